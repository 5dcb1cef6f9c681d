package management

import (
	"context"
	"testing"
	"time"

	"petrel/management/internal/mgmttest"
	"petrel/management/model"
)

func nextEvent(t *testing.T, ch <-chan PeerEvent) PeerEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no peer event within 30 s")
	}
	return PeerEvent{}
}

func TestWatchPeersConnectDisconnectDelete(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct, ks, ids := meshAccount(t, s, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.WatchPeers(ctx)

	st := openStream(t, s, ks[0], nil)
	st.next(t)
	ev := nextEvent(t, ch)
	if ev.AccountID != acct || ev.PeerID != ids[0] || !ev.Connected || ev.Removed || ev.Resync || ev.At.IsZero() {
		t.Fatalf("connect event = %+v, want connected peer %s of %s", ev, ids[0], acct)
	}
	st.cancel()
	st.ended(t)
	if ev := nextEvent(t, ch); ev.PeerID != ids[0] || ev.Connected || ev.Removed {
		t.Fatalf("disconnect event = %+v, want offline peer %s", ev, ids[0])
	}

	st2 := openStream(t, s, ks[1], nil)
	st2.next(t)
	if ev := nextEvent(t, ch); ev.PeerID != ids[1] || !ev.Connected {
		t.Fatalf("event = %+v, want peer %s connected", ev, ids[1])
	}
	if err := s.Delete(mgmttest.Ctx(t), acct, model.KindPeer, ids[1]); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, ch); ev.PeerID != ids[1] || ev.Connected || !ev.Removed {
		t.Fatalf("event = %+v, want peer %s removed", ev, ids[1])
	}
	st2.ended(t)
	select {
	case ev := <-ch:
		t.Fatalf("unexpected event after removal: %+v (the ended stream was no longer the peer's)", ev)
	default:
	}

	cancel()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed after ctx ended")
		}
	}
}

// A subscriber that never reads must not hold the hub: registrations go on,
// and the subscriber later finds one Resync event instead of a backlog.
func TestWatchPeersSlowSubscriberGetsResync(t *testing.T) {
	var w peerWatchers
	slow := w.subscribe(4)
	fast := w.subscribe(100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			w.publish(PeerEvent{AccountID: "a", PeerID: "p", Connected: i%2 == 0})
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("publish blocked on a subscriber that does not read")
	}
	if n := len(fast.ch); n != 50 {
		t.Fatalf("fast subscriber got %d events, want 50", n)
	}
	var got []PeerEvent
	for len(slow.ch) > 0 {
		got = append(got, <-slow.ch)
	}
	sawResync := false
	for _, ev := range got {
		sawResync = sawResync || ev.Resync
	}
	if !sawResync || len(got) > 4 {
		t.Fatalf("slow subscriber queue = %+v, want at most 4 events including a Resync", got)
	}
	w.unsubscribe(slow)
	w.unsubscribe(slow) // idempotent
	w.publish(PeerEvent{PeerID: "after"})
	if _, ok := <-slow.ch; ok {
		t.Fatal("unsubscribed channel still open")
	}
	w.unsubscribe(fast)
}

func TestWatchPeersEndsWithService(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	ch := s.WatchPeers(context.Background())
	s.Stop()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("got an event, want the channel closed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("channel not closed after Stop")
	}
}
