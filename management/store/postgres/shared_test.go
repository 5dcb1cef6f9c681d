package postgres

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"petrel/management/model"
	"petrel/management/store"
	"petrel/management/store/storetest"
)

// TestSharedLockModes: any number of shared stores (--ha) open together; a
// single-writer store is refused while one is open, and the reverse.
func TestSharedLockModes(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	s1, err := OpenShared(ctx, dsn, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := OpenShared(ctx, dsn, testLog(t))
	if err != nil {
		t.Fatalf("second shared store: %v", err)
	}
	if _, err := Open(ctx, dsn, testLog(t)); !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "--ha") {
		t.Fatalf("single writer beside shared stores: %v, want store.ErrLocked naming --ha", err)
	}
	s1.Close()
	s2.Close()
	one, err := Open(ctx, dsn, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	if _, err := OpenShared(ctx, dsn, testLog(t)); !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "without --ha") {
		t.Fatalf("shared store beside a single writer: %v, want store.ErrLocked saying without --ha", err)
	}
}

// TestFollowNotifies: a shared store's committed account creation and
// version bumps reach another store's Follow in order, as "<id> <version>";
// a rolled-back transaction notifies nothing; Versions agrees.
func TestFollowNotifies(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	writer, err := OpenShared(ctx, dsn, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	follower, err := OpenShared(ctx, dsn, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer follower.Close()

	var mu sync.Mutex
	var got []store.Change
	listening := make(chan struct{}, 1)
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- follower.Follow(fctx, func(c store.Change) {
			mu.Lock()
			got = append(got, c)
			mu.Unlock()
		}, func() {
			select {
			case listening <- struct{}{}:
			default:
			}
		})
	}()
	defer func() { stop(); <-done }()
	<-listening

	a := model.NewAccount("acc-n", netip.MustParsePrefix("100.64.0.0/16"), time.Unix(1, 0).UTC())
	if err := writer.Update(ctx, func(tx store.Tx) error { return tx.CreateAccount(a) }); err != nil {
		t.Fatal(err)
	}
	bump := func(v int64, fail bool) {
		err := writer.Update(ctx, func(tx store.Tx) error {
			if err := tx.BumpVersion(a.ID, v); err != nil {
				return err
			}
			if fail {
				return errors.New("roll back")
			}
			return nil
		})
		if (err != nil) != fail {
			t.Fatalf("bump from %d (fail %v): %v", v, fail, err)
		}
	}
	bump(0, false)
	bump(1, true) // rolled back: no notification
	bump(1, false)
	want := []store.Change{{AccountID: a.ID, Version: 0}, {AccountID: a.ID, Version: 1}, {AccountID: a.ID, Version: 2}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // room for a stray extra notification
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("notifications %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("notifications %v, want %v", got, want)
		}
	}
	vs, err := follower.Versions(ctx)
	if err != nil || vs[a.ID] != 2 {
		t.Fatalf("versions %v, %v; want %s at 2", vs, err, a.ID)
	}
}

func TestParsePayload(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want store.Change
		ok   bool
	}{
		{"abc 7", store.Change{AccountID: "abc", Version: 7}, true},
		{"abc", store.Change{}, false},
		{" 7", store.Change{}, false},
		{"abc x", store.Change{}, false},
	} {
		got, err := parsePayload(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parsePayload(%q) = %v, %v", tc.in, got, err)
		}
	}
}
