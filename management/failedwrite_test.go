package management

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/proto"

	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/management/store"
)

// flakyStore fails every write while fail is set (a full disk, a lost
// PostgreSQL connection) after the service validated the change.
type flakyStore struct {
	store.Store
	fail atomic.Bool
}

var errDiskFull = errors.New("disk full")

func (f *flakyStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if f.fail.Load() {
		return errDiskFull
	}
	return f.Store.Update(ctx, fn)
}

// A change whose store write fails changes nothing: not the account the
// REST API reads (restapi.TestFailedWriteRESTAnswersOldState checks the
// API's answers), not the Sync streams: the first delta an open stream
// gets afterwards is that of the next successful change, with the next
// serial.
func TestFailedWriteChangesNothing(t *testing.T) {
	fs := &flakyStore{Store: sqliteBackend(t).Open(t)}
	s, _ := startService(t, fs)
	ctx := mgmttest.Ctx(t)
	acct, ks, ids := meshAccount(t, s, 2)
	stream := openStream(t, s, ks[0], nil)
	first := stream.next(t)
	applied := first.GetFull()
	before, _ := s.Snapshot(acct)

	fs.fail.Store(true)
	snap, _ := s.Snapshot(acct)
	var mesh string
	for id := range snap.Policies {
		mesh = id
	}
	if err := s.Delete(ctx, acct, model.KindPolicy, mesh); err == nil {
		t.Fatal("delete succeeded with a failing store")
	}
	if _, err := s.Put(ctx, acct, &model.Group{Name: "ghost"}); err == nil {
		t.Fatal("put succeeded with a failing store")
	}
	after, _ := s.Snapshot(acct)
	if len(after.Policies) != len(before.Policies) || len(after.Groups) != len(before.Groups) || after.Version != before.Version {
		t.Fatalf("a failed write changed the account: policies %d→%d, groups %d→%d, version %d→%d",
			len(before.Policies), len(after.Policies), len(before.Groups), len(after.Groups), before.Version, after.Version)
	}
	if m := s.freshMap(t, acct, ids[0]); !proto.Equal(m, applied) {
		t.Fatal("a failed write changed the peer's map")
	}

	fs.fail.Store(false)
	// A control change that succeeds: the stream delivers in order, so if
	// either failed write had sent a delta it would arrive before this one.
	if _, err := s.Put(ctx, acct, &model.Peer{ID: ids[1], DNSLabel: "control"}); err != nil {
		t.Fatal(err)
	}
	want := s.freshMap(t, acct, ids[0])
	if len(want.GetPeers()) != 1 {
		t.Fatalf("control change: the peer sees %d peers, want 1", len(want.GetPeers()))
	}
	r := stream.next(t)
	if r.GetSerial() != first.GetSerial()+1 || r.GetDelta() == nil {
		t.Fatalf("first message after the failed writes: serial %d after %d, delta %v", r.GetSerial(), first.GetSerial(), r.GetDelta() != nil)
	}
	first, applied = r, netmap.Apply(applied, r.GetDelta())
	if !proto.Equal(applied, want) {
		t.Fatalf("the first delta after the failed writes is not (only) the control change: the stream has %d peers, want %d (a failed write's delta was delivered)",
			len(applied.GetPeers()), len(want.GetPeers()))
	}

	if _, err := s.Put(ctx, acct, &model.Group{Name: "real"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, acct, model.KindPolicy, mesh); err != nil {
		t.Fatal(err)
	}
	for applied != nil && len(applied.Peers) != 0 {
		r := stream.next(t)
		if r.GetSerial() != first.GetSerial()+1 {
			t.Fatalf("serial %d after %d: the failed change was delivered", r.GetSerial(), first.GetSerial())
		}
		first = r
		applied = netmap.Apply(applied, r.GetDelta())
	}
	if !proto.Equal(applied, s.freshMap(t, acct, ids[0])) {
		t.Fatal("stream and fresh map differ")
	}
}
