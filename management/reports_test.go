package management

import (
	"context"
	"strings"
	"testing"

	"petrel/internal/keys"
	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/proto/managementpb"
)

func pathEntry(k keys.Private, st managementpb.PeerPathState, reason string) *managementpb.PeerPathReport {
	pk := k.Public()
	return &managementpb.PeerPathReport{PublicKey: pk[:], State: st, Reason: reason, LatencyUs: 500}
}

const (
	stP2P     = managementpb.PeerPathState_PEER_PATH_STATE_P2P
	stRelayed = managementpb.PeerPathState_PEER_PATH_STATE_RELAYED
	stOffline = managementpb.PeerPathState_PEER_PATH_STATE_OFFLINE
)

// matrixAccount: peers 0..2 meshed by a policy on group "mesh", peer 3
// outside it; all four with a Sync stream open.
func matrixAccount(t *testing.T, s *Service) (string, []keys.Private, []string, []*stream) {
	t.Helper()
	ctx := mgmttest.Ctx(t)
	acct, ks, ids := meshAccount(t, s, 4)
	g := mustGroup(t, s, acct, "mesh", ids[:3]...)
	snap, _ := s.Snapshot(acct)
	for _, p := range snap.Policies {
		p.Rules[0].Sources, p.Rules[0].Destinations = []string{g.ID}, []string{g.ID}
		if _, err := s.Put(ctx, acct, p); err != nil {
			t.Fatal(err)
		}
	}
	var sts []*stream
	for _, k := range ks {
		st := openStream(t, s, k, nil)
		st.next(t)
		sts = append(sts, st)
	}
	return acct, ks, ids, sts
}

func report(t *testing.T, s *Service, k keys.Private, full bool, es ...*managementpb.PeerPathReport) {
	t.Helper()
	if err := s.ReportPeers(k.Public(), &managementpb.ReportPeersRequest{Full: full, Peers: es}); err != nil {
		t.Fatal(err)
	}
}

func TestConnectivityCombinesBothViews(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct, ks, ids, sts := matrixAccount(t, s)
	report(t, s, ks[0], true, pathEntry(ks[1], stP2P, ""), pathEntry(ks[2], stRelayed, "forced"))
	report(t, s, ks[1], true, pathEntry(ks[0], stP2P, ""), pathEntry(ks[2], stP2P, ""))
	report(t, s, ks[2], true, pathEntry(ks[0], stRelayed, "ice-failed"), pathEntry(ks[1], stOffline, "no-reply"))

	m, err := s.Connectivity(acct, ids, append([]string{"nope"}, ids...))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		a, b   int
		state  PairState
		reason string
	}{
		{0, 1, PairP2P, ""}, {1, 0, PairP2P, ""},
		{0, 2, PairRelayed, "forced"}, {2, 0, PairRelayed, "forced"},
		{1, 2, PairDown, "no-reply"}, {2, 1, PairDown, "no-reply"},
		{0, 3, PairNoPolicy, ""}, {3, 2, PairNoPolicy, ""},
	} {
		p := m.Pair(ids[c.a], ids[c.b])
		if p.State != c.state || p.Reason != c.reason {
			t.Errorf("pair %d→%d = %s %q, want %s %q", c.a, c.b, p.State, p.Reason, c.state, c.reason)
		}
	}
	if p := m.Pair(ids[0], ids[1]); p.AtoB.State != PathP2P || p.BtoA.State != PathP2P || p.AtoB.Latency == 0 {
		t.Errorf("pair 0→1 views = %+v / %+v, want both p2p with latency", p.AtoB, p.BtoA)
	}
	if len(m.Cols) != len(ids) {
		t.Errorf("cols = %v: the unknown ID must be dropped", m.Cols)
	}

	// A side without a Sync stream is down, and its report is gone.
	sts[2].cancel()
	sts[2].ended(t)
	m, _ = s.Connectivity(acct, ids, ids)
	if p := m.Pair(ids[0], ids[2]); p.State != PairDown || p.Reason != "no sync stream" || p.BtoA.State != PathUnknown {
		t.Errorf("pair with disconnected peer = %+v, want down without its view", p)
	}
	err = s.ReportPeers(ks[2].Public(), &managementpb.ReportPeersRequest{Full: true})
	wantKind(t, err, KindPrecondition, "report without a sync stream")

	// A deleted peer's report goes with it.
	if err := s.Delete(mgmttest.Ctx(t), acct, model.KindPeer, ids[1]); err != nil {
		t.Fatal(err)
	}
	if v := s.hub.watch.paths.views(ids[1]); v != nil {
		t.Errorf("deleted peer's report kept: %v", v)
	}
	m, _ = s.Connectivity(acct, ids, ids)
	if len(m.Rows) != 3 {
		t.Errorf("rows = %v, want the deleted peer dropped", m.Rows)
	}
}

func TestReportPeersBounds(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct, ks, ids, _ := matrixAccount(t, s)
	stranger := mgmttest.NewKey(t)

	// More entries than the account has peers.
	var many []*managementpb.PeerPathReport
	for range 5 {
		many = append(many, pathEntry(ks[1], stP2P, ""))
	}
	err := s.ReportPeers(ks[0].Public(), &managementpb.ReportPeersRequest{Full: true, Peers: many})
	wantKind(t, err, KindInvalid, "report longer than the account")

	// Unknown keys, the sender itself, unknown states and bad keys are
	// ignored; reasons are cut and cleaned.
	long := strings.Repeat("x", 100) + "\x1b[31m"
	report(t, s, ks[0], true,
		pathEntry(stranger, stP2P, ""), pathEntry(ks[0], stP2P, ""),
		&managementpb.PeerPathReport{PublicKey: []byte{1, 2}, State: stP2P},
		pathEntry(ks[1], stRelayed, "ice\x1b[2Jfailed"+long))
	report(t, s, ks[0], false, &managementpb.PeerPathReport{PublicKey: pathEntry(ks[2], 0, "").PublicKey, State: 99})
	v := s.hub.watch.paths.views(ids[0])
	if len(v) != 1 {
		t.Fatalf("views = %v, want only peer 1's", v)
	}
	if r := v[ids[1]].Reason; len(r) > maxReportReason || strings.ContainsRune(r, 0x1b) || !strings.HasPrefix(r, "ice[2Jfailed") {
		t.Errorf("reason %q: want at most %d printable bytes", r, maxReportReason)
	}

	// A peer of another account is unknown too (covered by lookupKey's
	// account check); the matrix refuses oversize requests.
	big := make([]string, MaxMatrixSide+1)
	_, err = s.Connectivity(acct, big, nil)
	wantKind(t, err, KindInvalid, "oversize matrix")

	// Rate: a burst, then KindExhausted.
	var exhausted bool
	for range 20 {
		err := s.ReportPeers(ks[3].Public(), &managementpb.ReportPeersRequest{Full: true})
		if KindOf(err) == KindExhausted {
			exhausted = true
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !exhausted {
		t.Error("20 reports at once were all taken: no rate limit")
	}
}

func TestReportPeersPublishesChanges(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct, ks, ids, _ := matrixAccount(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.WatchPeers(ctx)
	report(t, s, ks[0], true, pathEntry(ks[1], stP2P, ""))
	if ev := nextEvent(t, ch); !ev.Paths || ev.PeerID != ids[0] || ev.AccountID != acct {
		t.Fatalf("event = %+v, want a paths event of peer 0", ev)
	}
	report(t, s, ks[0], false, pathEntry(ks[1], stP2P, "")) // same state: no event
	report(t, s, ks[0], false, pathEntry(ks[1], stRelayed, "ice-failed"))
	if ev := nextEvent(t, ch); !ev.Paths || ev.PeerID != ids[0] {
		t.Fatalf("event = %+v, want a paths event of peer 0 (the unchanged report must not publish)", ev)
	}
	select {
	case ev := <-ch:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
	// removed_keys drops an entry.
	pk := ks[1].Public()
	if err := s.ReportPeers(ks[0].Public(), &managementpb.ReportPeersRequest{RemovedKeys: [][]byte{pk[:]}}); err != nil {
		t.Fatal(err)
	}
	if v := s.hub.watch.paths.views(ids[0]); len(v) != 0 {
		t.Errorf("views after removal = %v", v)
	}
}
