package engine_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"petrel/client/engine"
	"petrel/internal/keys"
	"petrel/management/model"
	"petrel/proto/daemonpb"
)

// peerID finds an agent's peer ID in the account.
func (m *mesh) peerID(e *engine.Engine) string {
	m.t.Helper()
	acct, err := m.srv.Management().Snapshot(m.acct)
	if err != nil {
		m.t.Fatal(err)
	}
	for id, p := range acct.Peers {
		if p.PublicKey == e.PublicKey().String() {
			return id
		}
	}
	m.t.Fatalf("agent %s not in the account", e.PublicKey().Short())
	return ""
}

func (m *mesh) allGroup() string {
	acct, err := m.srv.Management().Snapshot(m.acct)
	if err != nil {
		m.t.Fatal(err)
	}
	for id, g := range acct.Groups {
		if g.Name == "All" {
			return id
		}
	}
	m.t.Fatal("no All group")
	return ""
}

func (m *mesh) putRoute(id, network string, router *engine.Engine, metric int, auto bool) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := m.srv.Management().Put(ctx, m.acct, &model.Route{Description: id, NetworkID: "net-" + network,
		Network: netip.MustParsePrefix(network), Peer: m.peerID(router), Groups: []string{m.allGroup()},
		Metric: metric, Enabled: true, AutoApply: auto})
	if err != nil {
		m.t.Fatal(err)
	}
}

// carriers returns the peers of a's device whose allowed IPs hold network.
func carriers(a *engine.Engine, network netip.Prefix) ([]keys.Public, string) {
	all, err := a.AllowedIPs()
	if err != nil {
		return nil, err.Error()
	}
	var out []keys.Public
	desc := ""
	for k, ips := range all {
		desc += fmt.Sprintf("[%s %v] ", k.Short(), ips)
		if slices.Contains(ips, network) {
			out = append(out, k)
		}
	}
	return out, desc
}

// knowsRoutes waits until a's status lists n routes.
func knowsRoutes(t *testing.T, a *engine.Engine, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d routes in the map", n), 30*time.Second, func() (bool, string) {
		st := a.Status()
		return len(st.Routes) == n, fmt.Sprint(st.Routes)
	})
}

func carriedOnlyBy(a, want *engine.Engine, network netip.Prefix) func() (bool, string) {
	return func() (bool, string) {
		got, desc := carriers(a, network)
		if want == nil {
			return len(got) == 0, desc
		}
		return len(got) == 1 && got[0] == want.PublicKey(), desc
	}
}

// Two routing peers serve one network: exactly one carries it in the
// WireGuard allowed IPs; when it stops, the other takes over.
func TestHARoutingPeersFailover(t *testing.T) {
	m := newMesh(t)
	a, r1, r2 := m.addAgent("a"), m.addAgent("r1"), m.addAgent("r2")
	site := netip.MustParsePrefix("10.20.0.0/24")
	m.putRoute("site-r1", site.String(), r1, 10, false)
	m.putRoute("site-r2", site.String(), r2, 20, false)
	knowsRoutes(t, a, 2)
	waitFor(t, "r1 (lower metric) carries the site", 60*time.Second, carriedOnlyBy(a, r1, site))
	r1.Stop()
	waitFor(t, "failover to r2", 60*time.Second, carriedOnlyBy(a, r2, site))
}

// The exit node carries 0.0.0.0/0 only while selected; auto_apply selects
// it by itself; off wins over auto_apply; SOCKS5 destinations follow.
func TestExitNodeSelection(t *testing.T) {
	m := newMesh(t)
	a, x1, x2 := m.addAgent("a"), m.addAgent("x1"), m.addAgent("x2")
	def := netip.MustParsePrefix("0.0.0.0/0")
	m.putRoute("exit-x1", def.String(), x1, 10, true)
	m.putRoute("exit-x2", def.String(), x2, 10, false)
	knowsRoutes(t, a, 2)
	waitFor(t, "auto_apply exit x1", 60*time.Second, carriedOnlyBy(a, x1, def))

	if _, err := a.SetExitNode(&daemonpb.SetExitNodeRequest{Peer: "x2"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "selected exit x2", 10*time.Second, carriedOnlyBy(a, x2, def))
	if x := a.Status().ExitNode; x == nil || !x.Active || x.Auto || x.PeerName != "x2" {
		t.Fatalf("exit status %+v", x)
	}
	if _, err := a.SetExitNode(&daemonpb.SetExitNodeRequest{Peer: "no-such-peer"}); err == nil {
		t.Fatal("unknown exit node accepted")
	}
	if _, err := a.SetExitNode(&daemonpb.SetExitNodeRequest{Off: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no exit node", 10*time.Second, carriedOnlyBy(a, nil, def))
	time.Sleep(3 * time.Second) // several route ticks: off must hold against auto_apply
	if got, desc := carriers(a, def); len(got) != 0 {
		t.Fatalf("auto_apply overrode off: %s", desc)
	}
}
