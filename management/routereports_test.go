package management

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"petrel/internal/keys"
	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/proto/managementpb"
)

const (
	netHA    = "10.20.0.0/24" // routes through peers 1 and 2 (HA)
	netGroup = "10.30.0.0/24" // through the group "routers" (peer 1)
	netOff   = "10.40.0.0/24" // a disabled route through peer 1
)

// routeAccount is matrixAccount with three routes: netHA through peers 1
// and 2 (same network ID), netGroup through a group holding peer 1, and
// the disabled netOff. It returns the HA routes' IDs.
func routeAccount(t *testing.T, s *Service) (string, []keys.Private, []string, []*stream, []string) {
	t.Helper()
	ctx := mgmttest.Ctx(t)
	acct, ks, ids, sts := matrixAccount(t, s)
	snap, _ := s.Snapshot(acct)
	all := allGroup(snap).ID
	routers := mustGroup(t, s, acct, "routers", ids[1])
	var ha []string
	for _, r := range []*model.Route{
		{NetworkID: "lan", Network: netip.MustParsePrefix(netHA), Peer: ids[1], Groups: []string{all}, Enabled: true},
		{NetworkID: "lan", Network: netip.MustParsePrefix(netHA), Peer: ids[2], Groups: []string{all}, Enabled: true, Metric: 5},
		{Network: netip.MustParsePrefix(netGroup), PeerGroups: []string{routers.ID}, Groups: []string{all}, Enabled: true},
		{Network: netip.MustParsePrefix(netOff), Peer: ids[1], Groups: []string{all}},
	} {
		obj, err := s.Put(ctx, acct, r)
		if err != nil {
			t.Fatal(err)
		}
		if r.Network.String() == netHA {
			ha = append(ha, obj.ObjectID())
		}
	}
	return acct, ks, ids, sts, ha
}

func routeEntry(network string, router keys.Private, reason string, active time.Duration) *managementpb.RouteReport {
	pk := router.Public()
	return &managementpb.RouteReport{Network: network, PeerPublicKey: pk[:], Reason: reason, ActiveMs: uint64(active.Milliseconds())}
}

func reportRoutes(t *testing.T, s *Service, k keys.Private, full bool, es ...*managementpb.RouteReport) {
	t.Helper()
	if err := s.ReportPeers(k.Public(), &managementpb.ReportPeersRequest{Full: full, Routes: es}); err != nil {
		t.Fatal(err)
	}
}

func routeHealth(t *testing.T, s *Service, acct string) map[string]RouteUse {
	t.Helper()
	h, err := s.RouteHealth(acct)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRouteHealth(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct, ks, ids, sts, _ := routeAccount(t, s)
	before := s.now()
	reportRoutes(t, s, ks[0], true, routeEntry(netHA, ks[1], "connected, direct", time.Minute),
		routeEntry(netGroup, ks[1], "connected, relayed", 0))
	reportRoutes(t, s, ks[3], true, routeEntry(netHA, ks[1], "connected, direct", time.Second))
	reportRoutes(t, s, ks[2], true, routeEntry(netGroup, ks[1], "", 0))

	h := routeHealth(t, s, acct)
	if u := h[netHA]; u.Active[ids[1]] != 2 || u.Clients != 2 || len(u.Active) != 1 || len(u.History) != 0 {
		t.Errorf("%s: %+v, want 2 clients through peer 1, no history", netHA, u)
	}
	if u := h[netGroup]; u.Active[ids[1]] != 2 || u.Clients != 2 {
		t.Errorf("%s: %+v, want 2 clients through peer 1", netGroup, u)
	}
	c := s.RouteChoices(ids[0])[netHA]
	if c.Router != ids[1] || c.Reason != "connected, direct" || c.Since.After(before.Add(-time.Minute+time.Second)) || c.Since.Before(before.Add(-2*time.Minute)) {
		t.Errorf("peer 0's choice = %+v, want peer 1 since about a minute before %v", c, before)
	}

	// Peer 0 fails over to peer 2: the counts follow, and the change is
	// history; the same choice again is no new change.
	const why = "failover: previous routing peer is down; connected, direct"
	reportRoutes(t, s, ks[0], false, routeEntry(netHA, ks[2], why, time.Second))
	reportRoutes(t, s, ks[0], false, routeEntry(netHA, ks[2], why, 3*time.Second))
	h = routeHealth(t, s, acct)
	u := h[netHA]
	if u.Active[ids[1]] != 1 || u.Active[ids[2]] != 1 || u.Clients != 2 {
		t.Errorf("after the failover: %+v, want one client through each of peers 1 and 2", u)
	}
	if len(u.History) != 1 {
		t.Fatalf("history = %+v, want the one failover", u.History)
	}
	if f := u.History[0]; f.Client != ids[0] || f.From != ids[1] || f.To != ids[2] || f.Reason != why || f.At.IsZero() {
		t.Errorf("failover = %+v, want peer 0 from peer 1 to peer 2 with the reason", f)
	}
	if h[netGroup].Clients != 2 {
		t.Errorf("%s: %+v: an incremental report must keep the other networks", netGroup, h[netGroup])
	}

	// removed_networks drops one network; a full report without routes
	// drops them all.
	if err := s.ReportPeers(ks[0].Public(), &managementpb.ReportPeersRequest{RemovedNetworks: []string{netGroup}}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReportPeers(ks[2].Public(), &managementpb.ReportPeersRequest{Full: true}); err != nil {
		t.Fatal(err)
	}
	if u := routeHealth(t, s, acct)[netGroup]; u.Clients != 0 {
		t.Errorf("%s: %+v, want no client after the removal and the empty full report", netGroup, u)
	}

	// An agent whose Sync stream ends no longer counts; the history stays.
	sts[3].cancel()
	sts[3].ended(t)
	waitFor(t, "peer 3's route report dropped", func() bool { return s.RouteChoices(ids[3]) == nil })
	if u := routeHealth(t, s, acct)[netHA]; u.Clients != 1 || u.Active[ids[2]] != 1 || len(u.History) != 1 {
		t.Errorf("after peer 3's stream ended: %+v, want peer 0 alone and the history kept", u)
	}
}

func TestRouteHistoryBounded(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct, _, ids, _, ha := routeAccount(t, s)
	r := &s.hub.watch.paths
	nets := map[string]bool{netHA: true, netGroup: true}
	rep := &peerReport{accountID: acct}
	t0 := time.Unix(1_000_000, 0)
	r.mu.Lock()
	for i := range maxFailovers + 5 {
		to := ids[1+i%2]
		r.applyRoutes(rep, ids[0], routeUpdate{networks: nets, upserts: map[string]RouteChoice{
			netHA: {Router: to, Reason: fmt.Sprint("switch ", i), Since: t0.Add(time.Duration(i) * time.Second)}}}, false)
	}
	if r.byPeer == nil {
		r.byPeer = map[string]*peerReport{}
	}
	r.byPeer[ids[0]] = rep
	r.mu.Unlock()
	u := routeHealth(t, s, acct)[netHA]
	if len(u.History) != maxFailovers {
		t.Fatalf("history of %d changes, want the last %d", len(u.History), maxFailovers)
	}
	if u.History[0].Reason != fmt.Sprint("switch ", maxFailovers+4) || u.History[maxFailovers-1].Reason != "switch 5" {
		t.Errorf("history from %q to %q, want the latest first, back to switch 5", u.History[0].Reason, u.History[maxFailovers-1].Reason)
	}

	// The history of a network the account no longer routes goes with
	// the next report of that account.
	for _, id := range ha {
		if err := s.Delete(mgmttest.Ctx(t), acct, model.KindRoute, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := routeHealth(t, s, acct)[netHA]; ok {
		t.Errorf("RouteHealth still lists %s after its routes were deleted", netHA)
	}
	r.mu.Lock()
	r.applyRoutes(rep, ids[0], routeUpdate{networks: map[string]bool{netGroup: true}}, true)
	_, kept := r.history[acct][netHA]
	r.mu.Unlock()
	if kept {
		t.Errorf("history of the deleted network %s kept", netHA)
	}
}

func TestRouteReportsBounds(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct, ks, ids, _, _ := routeAccount(t, s)
	stranger := mgmttest.NewKey(t)

	// Malformed input is refused and changes nothing, paths included.
	reportRoutes(t, s, ks[2], true, routeEntry(netGroup, ks[1], "ok", 0))
	pk1 := ks[1].Public()
	for _, c := range []struct {
		what string
		from keys.Private
		req  *managementpb.ReportPeersRequest
	}{
		{"short routing peer key", ks[2], &managementpb.ReportPeersRequest{Full: true,
			Peers:  []*managementpb.PeerPathReport{pathEntry(ks[1], stP2P, "")},
			Routes: []*managementpb.RouteReport{{Network: netHA, PeerPublicKey: pk1[:31]}}}},
		{"network that is no prefix", ks[0], &managementpb.ReportPeersRequest{Routes: []*managementpb.RouteReport{
			{Network: "10.20.0.0/33", PeerPublicKey: pk1[:]}}}},
		{"removed network that is no prefix", ks[0], &managementpb.ReportPeersRequest{RemovedNetworks: []string{netGroup, strings.Repeat("x", 1000)}}},
		{"more route entries than networks", ks[0], &managementpb.ReportPeersRequest{Routes: []*managementpb.RouteReport{
			routeEntry(netHA, ks[1], "", 0), routeEntry(netGroup, ks[1], "", 0), routeEntry(netHA, ks[1], "", 0)}}},
	} {
		err := s.ReportPeers(c.from.Public(), c.req)
		wantKind(t, err, KindInvalid, c.what)
		if err != nil && len(err.Error()) > 200 {
			t.Errorf("%s: error of %d bytes: the input must not be echoed whole", c.what, len(err.Error()))
		}
	}
	if v := s.hub.watch.paths.views(ids[2]); len(v) != 0 {
		t.Errorf("paths of a refused report kept: %v", v)
	}
	if c := s.RouteChoices(ids[2]); len(c) != 1 || c[netGroup].Router != ids[1] {
		t.Errorf("peer 2's routes after refused reports = %v, want the earlier report unchanged", c)
	}
	if c := s.RouteChoices(ids[0]); len(c) != 0 {
		t.Errorf("peer 0's routes after refused reports = %v, want none", c)
	}

	// Entries naming a stranger, a network the account does not route (or
	// routes through a disabled route), a peer that does not serve the
	// network or the sender itself are ignored; reasons are cut and
	// cleaned, active times capped.
	reportRoutes(t, s, ks[1], true,
		routeEntry(netHA, stranger, "", 0), routeEntry("10.99.0.0/24", ks[2], "", 0))
	reportRoutes(t, s, ks[1], false, routeEntry(netOff, ks[1], "", 0), routeEntry(netHA, ks[1], "", 0))
	reportRoutes(t, s, ks[3], true, routeEntry(netHA, ks[3], "", 0), routeEntry(netGroup, ks[2], "", 0))
	if c := s.RouteChoices(ids[1]); len(c) != 0 {
		t.Errorf("peer 1's ignorable entries were kept: %v", c)
	}
	if c := s.RouteChoices(ids[3]); len(c) != 0 {
		t.Errorf("peer 3's entries naming non-routers were kept: %v", c)
	}
	now := s.now()
	long := "failover\x1b[2J: " + strings.Repeat("é", 60)
	if err := s.ReportPeers(ks[3].Public(), &managementpb.ReportPeersRequest{Routes: []*managementpb.RouteReport{
		{Network: "10.20.0.7/24", PeerPublicKey: pk1[:], Reason: long, ActiveMs: 1 << 63}}}); err != nil {
		t.Fatal(err)
	}
	c, ok := s.RouteChoices(ids[3])[netHA]
	if !ok {
		t.Fatalf("peer 3's choice for %s (reported unmasked) missing: %v", netHA, s.RouteChoices(ids[3]))
	}
	if len(c.Reason) > maxReportReason || strings.ContainsRune(c.Reason, 0x1b) || !strings.HasPrefix(c.Reason, "failover[2J: é") {
		t.Errorf("reason %q: want at most %d printable bytes", c.Reason, maxReportReason)
	}
	if c.Since.Before(now.Add(-maxRouteActive-time.Minute)) || c.Since.After(now) {
		t.Errorf("since %v: want the active time capped at %v before %v", c.Since, maxRouteActive, now)
	}
	if u := routeHealth(t, s, acct)[netOff]; u.Clients != 0 {
		t.Errorf("disabled route's network counted: %+v", u)
	}
}
