package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"petrel/internal/keys"
	"petrel/management/store"
)

// DB is one database that can be opened several times (sequentially or
// concurrently), as separate processes would.
type DB struct {
	// Open opens a new store on the database; the caller closes it.
	Open func() (store.Store, error)
	// Exec runs one raw SQL statement on the database (test tampering).
	Exec func(query string) error
}

// RunReopen runs the tests that need the same database opened more than
// once; newDB must create a fresh, empty database and arrange its cleanup.
func RunReopen(t *testing.T, newDB func(t *testing.T) DB) {
	t.Run("ReopenKeepsData", func(t *testing.T) { testReopen(t, newDB(t)) })
	t.Run("ServerKeyConcurrentFirstOpen", func(t *testing.T) { testServerKeyConcurrentOpen(t, newDB(t)) })
	t.Run("SchemaNewerRefused", func(t *testing.T) { testSchemaNewer(t, newDB(t)) })
	t.Run("SecondOpenRefused", func(t *testing.T) { testSecondOpenRefused(t, newDB(t)) })
}

// testSecondOpenRefused: one writer per store. While a store is open on the
// database a second Open fails with store.ErrLocked and a message saying
// why; after Close the database opens again. (A second petrel-server would
// otherwise write from its own stale in-memory accounts.)
func testSecondOpenRefused(t *testing.T, db DB) {
	s := mustOpen(t, db)
	save(t, s, fullAccount("acc-a", 10))
	s2, err := db.Open()
	if err == nil {
		s2.Close()
		s.Close()
		t.Fatal("second open of a store in use succeeded, want store.ErrLocked")
	}
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "in use by another petrel-server") {
		s.Close()
		t.Fatalf("second open: %v, want store.ErrLocked", err)
	}
	t.Logf("second open refused: %v", err)
	// The refused open changed nothing and the first store still works.
	save(t, s, fullAccount("acc-b", 11))
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s = mustOpen(t, db)
	defer s.Close()
	if got := load(t, s); len(got) != 2 {
		t.Fatalf("after reopen: %d accounts, want 2", len(got))
	}
	// Refused again while the reopened store holds it.
	if s2, err := db.Open(); !errors.Is(err, store.ErrLocked) {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("open while reopened store holds the lock: %v, want store.ErrLocked", err)
	}
}

func mustOpen(t *testing.T, db DB) store.Store {
	t.Helper()
	s, err := db.Open()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func testReopen(t *testing.T, db DB) {
	s := mustOpen(t, db)
	a, b := fullAccount("acc-a", 10), fullAccount("acc-b", 11)
	save(t, s, a)
	save(t, s, b)
	if _, _, err := useKey(t, s, hash("acc-ak1"), ts(1750000000, 1)); err != nil {
		t.Fatalf("use key: %v", err)
	}
	a.SetupKeys["k1"].UsedTimes++
	a.SetupKeys["k1"].LastUsed = ts(1750000000, 1)
	k1, err := s.ServerKey(ctxFor(t))
	if err != nil {
		t.Fatalf("server key: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s = mustOpen(t, db)
	defer s.Close()
	got := load(t, s)
	if len(got) != 2 || !reflect.DeepEqual(got["acc-a"], a) || !reflect.DeepEqual(got["acc-b"], b) {
		t.Fatalf("after reopen:\n got  %s\n want %s", dump(got["acc-a"]), dump(a))
	}
	k2, err := s.ServerKey(ctxFor(t))
	if err != nil || k1 != k2 {
		t.Fatalf("server key after reopen: same=%v err=%v", k1 == k2, err)
	}
}

// testServerKeyConcurrentOpen opens the fresh database from several stores
// at once (racing the single-writer lock and migrations) and asks each that
// got in for the server key: opens refused with store.ErrLocked are
// expected, at least one must succeed, and every key must be the same.
func testServerKeyConcurrentOpen(t *testing.T, db DB) {
	const n = 8
	got := make([]keys.Private, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := db.Open()
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			got[i], errs[i] = s.ServerKey(ctxFor(t))
		}()
	}
	wg.Wait()
	var first keys.Private
	for i := range n {
		if errors.Is(errs[i], store.ErrLocked) {
			continue
		}
		if errs[i] != nil {
			t.Fatalf("store %d: %v", i, errs[i])
		}
		if first.IsZero() {
			first = got[i]
		}
		if got[i] != first || got[i].IsZero() {
			t.Fatalf("store %d got a different server key", i)
		}
	}
	if first.IsZero() {
		t.Fatal("every concurrent open was refused")
	}
	s := mustOpen(t, db)
	defer s.Close()
	if k, err := s.ServerKey(ctxFor(t)); err != nil || k != first {
		t.Fatalf("server key after concurrent opens: same=%v err=%v", k == first, err)
	}
}

// testSchemaNewer: a database a newer petrel-server migrated past this
// binary's newest migration is refused with store.ErrSchemaNewer and a
// message telling the operator what to do; the refused open changes
// nothing and leaves the database openable once it is back in range.
func testSchemaNewer(t *testing.T, db DB) {
	s := mustOpen(t, db)
	a := fullAccount("acc-a", 10)
	save(t, s, a)
	latest, err := s.SchemaVersion(ctxFor(t))
	if err != nil {
		t.Fatalf("schema version: %v", err)
	}
	s.Close()
	newer := latest + 5
	if err := db.Exec(fmt.Sprintf("INSERT INTO schema_migrations (version) VALUES (%d)", newer)); err != nil {
		t.Fatalf("bump schema: %v", err)
	}
	for range 2 { // refused every time, not just once
		s, err = db.Open()
		if !errors.Is(err, store.ErrSchemaNewer) {
			if s != nil {
				s.Close()
			}
			t.Fatalf("open schema version %d (binary knows %d): %v, want store.ErrSchemaNewer", newer, latest, err)
		}
		want := fmt.Sprintf("database schema version %d is newer than this petrel-server supports (%d); upgrade petrel-server",
			newer, latest)
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("refusal message %q, want it to contain %q", err, want)
		}
	}
	// The refusal released the single-writer lock and wrote nothing: with the
	// newer version gone the database opens at the old version, data intact.
	if err := db.Exec(fmt.Sprintf("DELETE FROM schema_migrations WHERE version = %d", newer)); err != nil {
		t.Fatalf("restore schema: %v", err)
	}
	s = mustOpen(t, db)
	defer s.Close()
	if v, err := s.SchemaVersion(ctxFor(t)); err != nil || v != latest {
		t.Fatalf("schema version after refused open: %d, %v; want %d", v, err, latest)
	}
	if got := load(t, s); len(got) != 1 || !reflect.DeepEqual(got["acc-a"], a) {
		t.Fatalf("data after refused open:\n got  %s\n want %s", dump(got["acc-a"]), dump(a))
	}
}
