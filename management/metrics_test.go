package management

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/management/netmap"
)

// SyncStats counts open streams, registered peers, deltas merged for a
// lagging stream (exactly the changes not sent on their own) and streams
// cut for lagging.
func TestSyncStats(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t), func(c *Config) { c.MaxCoalesced = 32 })
	ctx := mgmttest.Ctx(t)
	acct, ks, ids := meshAccount(t, s, 2)
	if got := s.SyncStats(); got != (SyncStats{Peers: 2}) {
		t.Fatalf("before any stream: %+v", got)
	}
	gate := make(chan struct{})
	st := openStream(t, s, ks[0], gate)
	first := st.next(t)
	waitFor(t, "one open stream", func() bool { return s.SyncStats().Open == 1 })
	const changes = 20
	for i := range changes {
		if _, err := s.Put(ctx, acct, &model.Peer{ID: ids[1], DNSLabel: fmt.Sprintf("renamed-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	m, want, msgs := first.GetFull(), s.freshMap(t, acct, ids[0]), 0
	for !proto.Equal(m, want) {
		m = netmap.Apply(m, st.next(t).GetDelta())
		msgs++
	}
	if got := s.SyncStats().Coalesced; got != uint64(changes-msgs) || msgs == changes {
		t.Fatalf("coalesced %d with %d deltas sent for %d changes, want %d", got, msgs, changes, changes-msgs)
	}

	// A stream that lags past MaxCoalesced is cut, and counted.
	gate2 := make(chan struct{})
	st2 := openStream(t, s, ks[1], gate2)
	st2.next(t)
	for i := range 40 {
		if _, err := s.Put(ctx, acct, &model.Peer{ID: ids[0], DNSLabel: fmt.Sprintf("again-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	close(gate2)
	st2.ended(t)
	if got := s.SyncStats().Cut; got != 1 {
		t.Fatalf("cut %d, want 1", got)
	}
	waitFor(t, "stream gone", func() bool { return s.SyncStats().Open == 1 })
}
