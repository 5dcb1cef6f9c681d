package engine_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The agent reports its HA choice: the server counts it against the
// routing peer in use and records the failover, with the Selector's reason.
func TestRouteReportsReachServer(t *testing.T) {
	m := newMesh(t)
	a, r1, r2 := m.addAgent("a"), m.addAgent("r1"), m.addAgent("r2")
	site := netip.MustParsePrefix("10.20.0.0/24")
	m.putRoute("site-r1", site.String(), r1, 10, false)
	m.putRoute("site-r2", site.String(), r2, 20, false)
	knowsRoutes(t, a, 2)
	aID, r1ID, r2ID := m.peerID(a), m.peerID(r1), m.peerID(r2)
	health := func(router string, failover bool) func() (bool, string) {
		return func() (bool, string) {
			h, err := m.srv.Management().RouteHealth(m.acct)
			if err != nil {
				return false, err.Error()
			}
			u := h[site.String()]
			ok := u.Clients == 1 && u.Active[router] == 1
			if failover {
				ok = ok && len(u.History) == 1 && u.History[0].Client == aID && u.History[0].From == r1ID &&
					u.History[0].To == r2ID && strings.HasPrefix(u.History[0].Reason, "failover")
			}
			return ok, fmt.Sprintf("%+v", u)
		}
	}
	waitFor(t, "the server sees a through r1", 60*time.Second, health(r1ID, false))
	r1.Stop()
	waitFor(t, "the server sees a's failover to r2", 60*time.Second, health(r2ID, true))
}
