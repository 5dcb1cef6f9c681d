package engine_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"petrel/management"
	"petrel/management/model"
)

// The dashboard's DNS tester, end to end: the server asks agent a (over
// its Sync stream) to resolve b's name; a answers from its local zone with
// b's overlay IP, through ReportDNSQuery.
func TestDNSQueryFromManagement(t *testing.T) {
	m := newMesh(t)
	a, b := m.addAgent("a"), m.addAgent("b")
	bip := overlayIP(t, b)
	svc := m.srv.Management()
	ctx := management.WithPrincipal(context.Background(), management.Principal{AccountID: m.acct, Role: model.RoleOwner, Via: "admin-token"})
	aID := m.peerID(a)
	waitFor(t, "a resolves b for management", 30*time.Second, func() (bool, string) {
		res, err := svc.QueryDNS(ctx, m.acct, aID, "b.petrel.internal", "A")
		if err != nil {
			return false, err.Error()
		}
		return res.Rcode == "NOERROR" && res.Handler == "local-zone" && slices.ContainsFunc(res.Records, func(r string) bool {
			return strings.HasSuffix(r, bip.String())
		}), res.Rcode + " " + strings.Join(res.Records, "; ")
	})
	// From here on a's stream must stay up: a serial gap would make the
	// agent reconnect, which the server publishes as a status event.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	events := svc.WatchPeers(wctx)
	res, err := svc.QueryDNS(ctx, m.acct, aID, "nothing-here.petrel.internal", "A")
	if err != nil || res.Rcode != "NXDOMAIN" || res.Error != "" {
		t.Fatalf("missing name: %+v, %v", res, err)
	}
	// The stream stays in step (serial continuity) through the tests: a
	// map change after them still reaches a.
	c := m.addAgent("c")
	cip := overlayIP(t, c)
	waitFor(t, "a resolves c", 30*time.Second, func() (bool, string) {
		res, err := svc.QueryDNS(ctx, m.acct, aID, "c.petrel.internal", "A")
		if err != nil {
			return false, err.Error()
		}
		return slices.ContainsFunc(res.Records, func(r string) bool { return strings.HasSuffix(r, cip.String()) }), strings.Join(res.Records, "; ")
	})
	for {
		select {
		case ev := <-events:
			if ev.PeerID == aID && !ev.Paths {
				t.Fatalf("a's stream changed during the tests: %+v", ev)
			}
			continue
		default:
		}
		break
	}
}
