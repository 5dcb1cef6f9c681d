package postgres

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"petrel/management/store"
	"petrel/management/store/storetest"
)

// TestUIStateTakeOnce: of eight takers of one sign-in on two stores (two
// instances), exactly one gets it; an expired entry is swept, a live one
// kept; Put replaces.
func TestUIStateTakeOnce(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var sts []*Store
	for range 2 {
		s, err := OpenShared(ctx, dsn, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sts = append(sts, s)
	}
	now := time.Now()
	key := []byte("k1")
	if err := sts[0].PutUIState(ctx, "signin", key, []byte(`{"v":1}`), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := sts[0].PutUIState(ctx, "signin", key, []byte(`{"v":2}`), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, err := sts[i%2].TakeUIState(ctx, "signin", key)
			switch {
			case err == nil && string(data) == `{"v":2}`:
				got.Add(1)
			case !errors.Is(err, store.ErrNotFound):
				t.Errorf("take: %q, %v", data, err)
			}
		}()
	}
	wg.Wait()
	if got.Load() != 1 {
		t.Fatalf("%d takers got the entry, want 1", got.Load())
	}

	for k, exp := range map[string]time.Time{"old": now.Add(-time.Second), "live": now.Add(time.Hour)} {
		if err := sts[1].PutUIState(ctx, "session", []byte(k), []byte(`{}`), exp); err != nil {
			t.Fatal(err)
		}
	}
	if err := sts[0].SweepUIState(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, err := sts[0].GetUIState(ctx, "session", []byte("old")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired entry after the sweep: %v", err)
	}
	if _, err := sts[0].GetUIState(ctx, "session", []byte("live")); err != nil {
		t.Fatalf("live entry after the sweep: %v", err)
	}
}
