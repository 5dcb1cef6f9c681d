package postgres

import (
	"context"
	"testing"
	"time"

	"petrel/internal/keys"
	"petrel/management/store/storetest"
)

// TestSignalPresence: the newest registration wins whatever the commit
// order, an instance removes only its own row of that epoch, and a row of
// an instance whose heartbeat aged past the TTL is ignored.
func TestSignalPresence(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := OpenShared(ctx, dsn, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, _ := keys.NewPrivate()
	peer := k.Public()
	for _, in := range []struct{ id, url string }{{"i1", "http://one:1"}, {"i2", "http://two:2"}} {
		if err := s.SignalHeartbeat(ctx, in.id, in.url); err != nil {
			t.Fatal(err)
		}
	}
	lookup := func() string {
		t.Helper()
		inst, url, ok, err := s.SignalLookup(ctx, peer, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return ""
		}
		return inst + " " + url
	}
	epoch := func() int64 {
		t.Helper()
		e, err := s.SignalEpoch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	if got := lookup(); got != "" {
		t.Fatalf("lookup before any registration: %q", got)
	}
	older, newer := epoch(), epoch()
	if newer <= older {
		t.Fatalf("epochs not increasing: %d then %d", older, newer)
	}
	// The newer registration (on i2) commits first, the older (on i1) late.
	if err := s.SignalOpened(ctx, peer, "i2", newer); err != nil {
		t.Fatal(err)
	}
	if err := s.SignalOpened(ctx, peer, "i1", older); err != nil {
		t.Fatal(err)
	}
	if got := lookup(); got != "i2 http://two:2" {
		t.Fatalf("after a late older registration: %q, want i2 (newest epoch wins)", got)
	}
	// i1 ends its (older) session: i2's row stays.
	if err := s.SignalClosed(ctx, peer, "i1", older); err != nil {
		t.Fatal(err)
	}
	// i2's epoch on another instance's name, and another epoch on i2's:
	// neither is the row.
	if err := s.SignalClosed(ctx, peer, "i1", newer); err != nil {
		t.Fatal(err)
	}
	if err := s.SignalClosed(ctx, peer, "i2", older); err != nil {
		t.Fatal(err)
	}
	if got := lookup(); got != "i2 http://two:2" {
		t.Fatalf("after closes of sessions that do not own the row: %q, want i2", got)
	}
	// The peer moves to i1 with a newer epoch.
	third := epoch()
	if err := s.SignalOpened(ctx, peer, "i1", third); err != nil {
		t.Fatal(err)
	}
	if got := lookup(); got != "i1 http://one:1" {
		t.Fatalf("after moving: %q, want i1", got)
	}
	// Dead instance: i1's heartbeat ages past a short TTL.
	if _, err := s.pool.Exec(ctx, `UPDATE signal_instances SET heartbeat = now() - interval '1 hour' WHERE instance = 'i1'`); err != nil {
		t.Fatal(err)
	}
	if got := lookup(); got != "" {
		t.Fatalf("row of a dead instance: %q, want none", got)
	}
	if err := s.SignalHeartbeat(ctx, "i1", "http://one:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SignalClosed(ctx, peer, "i1", third); err != nil {
		t.Fatal(err)
	}
	if got := lookup(); got != "" {
		t.Fatalf("after the owner closed: %q, want none", got)
	}
	// A clean shutdown removes the instance and its rows.
	if err := s.SignalOpened(ctx, peer, "i2", epoch()); err != nil {
		t.Fatal(err)
	}
	if err := s.SignalInstanceGone(ctx, "i2"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM signal_presence`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("presence rows after the instance left: %d %v", n, err)
	}
}

// TestSignalReopened: a retried registration (fresh epoch) takes a free
// row, its own instance's row and a dead instance's row, but never a live
// row of another instance, whatever the epochs.
func TestSignalReopened(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := OpenShared(ctx, dsn, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, _ := keys.NewPrivate()
	peer := k.Public()
	for _, in := range []string{"r1", "r2"} {
		if err := s.SignalHeartbeat(ctx, in, "http://"+in); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { _ = s.SignalInstanceGone(ctx, "r1"); _ = s.SignalInstanceGone(ctx, "r2") }()
	reopen := func(inst string) bool {
		t.Helper()
		e, err := s.SignalEpoch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := s.SignalReopened(ctx, peer, inst, e, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	owner := func() string {
		t.Helper()
		inst, _, _, err := s.SignalLookup(ctx, peer, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return inst
	}
	if !reopen("r1") || owner() != "r1" {
		t.Fatal("a retry did not take a free row")
	}
	if !reopen("r1") || owner() != "r1" {
		t.Fatal("a retry did not replace its own instance's row")
	}
	if reopen("r2") || owner() != "r1" {
		t.Fatal("a retry with a higher epoch replaced a live row of another instance")
	}
	if _, err := s.pool.Exec(ctx, `UPDATE signal_instances SET heartbeat = now() - interval '1 hour' WHERE instance = 'r1'`); err != nil {
		t.Fatal(err)
	}
	if !reopen("r2") || owner() != "r2" {
		t.Fatal("a retry did not replace a dead instance's row")
	}
}
