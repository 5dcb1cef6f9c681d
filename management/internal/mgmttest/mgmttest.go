// Package mgmttest holds the test helpers the management service and its
// gRPC adapter share: the store backends every store-touching test runs
// against (SQLite always, PostgreSQL when PETREL_TEST_POSTGRES_DSN is set,
// required when CI=true), a test-scoped context, a logger that writes to
// the test log and key generation.
//
// Imported only from _test files under management/. The helpers are called
// from the test goroutine; a Backend's Open may be called several times in
// a row (reopen tests) but not concurrently.
package mgmttest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"petrel/internal/keys"
	"petrel/management/store"
	"petrel/management/store/storeopen"
	"petrel/management/store/storetest"
)

// Backend opens one database, possibly several times in a row.
type Backend struct {
	Name string
	Open func(t testing.TB) store.Store
}

// LogFunc returns the logger a store opened for t writes to.
type LogFunc func(t testing.TB) *slog.Logger

// SQLite is a fresh SQLite database in a temporary directory.
func SQLite(t testing.TB, log LogFunc) Backend {
	return open("sqlite", "sqlite", t.TempDir(), log)
}

// Postgres is a fresh PostgreSQL database, dropped at cleanup; false when
// PETREL_TEST_POSTGRES_DSN is unset (see storetest.NewPostgresDB).
func Postgres(t testing.TB, log LogFunc) (Backend, bool) {
	t.Helper()
	dsn, ok := storetest.NewPostgresDB(t)
	if !ok {
		return Backend{}, false
	}
	return open("postgres", dsn, "", log), true
}

func open(name, dsn, dir string, log LogFunc) Backend {
	return Backend{Name: name, Open: func(t testing.TB) store.Store {
		st, err := storeopen.Open(context.Background(), dsn, dir, log(t))
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		return st
	}}
}

// Backends lists the stores the tests run against: SQLite always,
// PostgreSQL when PETREL_TEST_POSTGRES_DSN is set (in CI it must be).
func Backends(t testing.TB, log LogFunc) []Backend {
	t.Helper()
	out := []Backend{SQLite(t, log)}
	if pg, ok := Postgres(t, log); ok {
		out = append(out, pg)
	}
	return out
}

// ForEachBackend runs fn as a subtest per backend.
func ForEachBackend(t *testing.T, log LogFunc, fn func(t *testing.T, b Backend)) {
	t.Helper()
	for _, b := range Backends(t, log) {
		t.Run(b.Name, func(t *testing.T) { fn(t, b) })
	}
}

// Ctx is a context cancelled after 60 s or at the end of the test.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// NewKey is a fresh private key.
func NewKey(t testing.TB) keys.Private {
	t.Helper()
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
