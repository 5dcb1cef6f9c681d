package management

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/proto/managementpb"
)

// stream drives Service.Sync in-process. Messages after the first wait for
// gate (if not nil) to be closed, like a stream whose client does not read.
type stream struct {
	cancel context.CancelFunc
	msgs   chan *managementpb.SyncResponse
	done   chan error
}

func openStream(t *testing.T, s *Service, k keys.Private, gate chan struct{}) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st := &stream{cancel: cancel, msgs: make(chan *managementpb.SyncResponse, 1024), done: make(chan error, 1)}
	sent := 0
	go func() {
		st.done <- s.Sync(ctx, k.Public(), &managementpb.SyncRequest{}, func(r *managementpb.SyncResponse) error {
			if sent++; sent > 1 && gate != nil {
				select {
				case <-gate:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			st.msgs <- r
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-st.done })
	return st
}

func (st *stream) next(t *testing.T) *managementpb.SyncResponse {
	t.Helper()
	select {
	case r := <-st.msgs:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("no sync message within 30 s")
	}
	return nil
}

func (st *stream) ended(t *testing.T) error {
	t.Helper()
	select {
	case err := <-st.done:
		st.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("sync did not end within 30 s")
	}
	return nil
}

// meshAccount registers n peers that all see each other.
func meshAccount(t *testing.T, s *Service, n int) (string, []keys.Private, []string) {
	t.Helper()
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	_, plain := mustSetupKey(t, s, acct, SetupKeyInput{Reusable: true})
	var ks []keys.Private
	var ids []string
	for i := range n {
		k := mgmttest.NewKey(t)
		resp, err := login(s, ctx, k, plain, fmt.Sprintf("peer%d", i))
		if err != nil {
			t.Fatal(err)
		}
		ks, ids = append(ks, k), append(ids, resp.GetPeerConfig().GetPeerId())
	}
	snap, _ := s.Snapshot(acct)
	all := allGroup(snap).ID
	if _, err := s.Put(ctx, acct, &model.Policy{Name: "mesh", Enabled: true, Rules: []model.PolicyRule{{
		Sources: []string{all}, Destinations: []string{all}, Bidirectional: true}}}); err != nil {
		t.Fatal(err)
	}
	return acct, ks, ids
}

func (s *Service) freshMap(t *testing.T, acct, peerID string) *managementpb.NetworkMap {
	t.Helper()
	st, _ := s.account(acct)
	m, err := st.view().snap.Map(peerID)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSyncCoalescesSlowStream(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	acct, ks, ids := meshAccount(t, s, 2)
	gate := make(chan struct{})
	st := openStream(t, s, ks[0], gate)
	first := st.next(t)
	const changes = 20
	for i := range changes {
		if _, err := s.Put(ctx, acct, &model.Peer{ID: ids[1], DNSLabel: fmt.Sprintf("renamed-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	m, serial := first.GetFull(), first.GetSerial()
	want := s.freshMap(t, acct, ids[0])
	msgs := 0
	for !proto.Equal(m, want) {
		r := st.next(t)
		msgs++
		if r.GetSerial() != serial+1 || r.GetDelta() == nil {
			t.Fatalf("message %d: serial %d after %d, delta %v", msgs, r.GetSerial(), serial, r.GetDelta() != nil)
		}
		m, serial = netmap.Apply(m, r.GetDelta()), r.GetSerial()
	}
	// The sender was blocked on the first delta while the rest arrived, so
	// they were merged into one: at most two deltas for twenty changes.
	if msgs > 2 {
		t.Fatalf("%d deltas for %d changes: not coalesced", msgs, changes)
	}
	if got := m.GetPeers()[0].GetFqdn(); !strings.HasPrefix(got, fmt.Sprintf("renamed-%d.", changes-1)) {
		t.Fatalf("final fqdn %q", got)
	}
}

func TestSyncSlowStreamIsCut(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t), func(c *Config) { c.MaxCoalesced = 3 })
	ctx := mgmttest.Ctx(t)
	acct, ks, ids := meshAccount(t, s, 2)
	gate := make(chan struct{})
	st := openStream(t, s, ks[0], gate)
	st.next(t)
	for i := range 10 {
		if _, err := s.Put(ctx, acct, &model.Peer{ID: ids[1], DNSLabel: fmt.Sprintf("r-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	err := st.ended(t)
	wantKind(t, err, KindUnavailable, "slow stream")
	if !strings.Contains(err.Error(), "too slow") {
		t.Fatalf("cut reason: %v", err)
	}
	// The agent resyncs in full and gets the current map.
	st2 := openStream(t, s, ks[0], nil)
	if got := st2.next(t).GetFull(); !proto.Equal(got, s.freshMap(t, acct, ids[0])) {
		t.Fatal("resync map differs")
	}
}

func TestSyncReplacedAndDeleted(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	acct, ks, ids := meshAccount(t, s, 2)
	old := openStream(t, s, ks[0], nil)
	old.next(t)
	waitFor(t, "peer 0 connected", func() bool { c, _ := s.PeerStatus(acct, ids[0]); return c })
	cur := openStream(t, s, ks[0], nil)
	cur.next(t)
	err := old.ended(t)
	wantKind(t, err, KindUnavailable, "replaced stream")
	if !strings.Contains(err.Error(), "replaced") {
		t.Fatalf("replaced stream error: %v", err)
	}
	if c, _ := s.PeerStatus(acct, ids[0]); !c {
		t.Fatal("peer not connected after replacement")
	}
	other := openStream(t, s, ks[1], nil)
	other.next(t)

	if err := s.Delete(ctx, acct, model.KindPeer, ids[0]); err != nil {
		t.Fatal(err)
	}
	wantKind(t, cur.ended(t), KindPermission, "deleted peer's stream")
	d := other.next(t).GetDelta()
	if len(d.GetRemovedPeers()) != 1 || d.GetRemovedPeers()[0] != ks[0].Public().String() {
		t.Fatalf("other peer's delta does not remove the deleted peer: %v", d)
	}
	if c, _ := s.PeerStatus(acct, ids[0]); c {
		t.Fatal("deleted peer still connected")
	}
	// A deleted peer cannot sync again.
	gone := openStream(t, s, ks[0], nil)
	wantKind(t, gone.ended(t), KindPermission, "sync after delete")
}

func TestStopEndsStreams(t *testing.T) {
	st := sqliteBackend(t).Open(t)
	s, _ := startService(t, st)
	_, ks, _ := meshAccount(t, s, 1)
	str := openStream(t, s, ks[0], nil)
	str.next(t)
	s.Stop()
	wantKind(t, str.ended(t), KindUnavailable, "stream after Stop")
}
