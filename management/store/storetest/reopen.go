package storetest

import (
	"errors"
	"reflect"
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
// at once (racing migrations too) and asks each for the server key.
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
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("store %d: %v", i, errs[i])
		}
		if got[i] != got[0] || got[i].IsZero() {
			t.Fatalf("store %d got a different server key", i)
		}
	}
}

func testSchemaNewer(t *testing.T, db DB) {
	s := mustOpen(t, db)
	v, err := s.SchemaVersion(ctxFor(t))
	if err != nil {
		t.Fatalf("schema version: %v", err)
	}
	s.Close()
	if err := db.Exec("INSERT INTO schema_migrations (version) VALUES (100000)"); err != nil {
		t.Fatalf("bump schema: %v", err)
	}
	s, err = db.Open()
	if !errors.Is(err, store.ErrSchemaNewer) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("open newer schema (was %d): %v, want ErrSchemaNewer", v, err)
	}
}
