package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"petrel/management/store"
	"petrel/management/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "petrel.db"), testLog(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func TestReopen(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T) storetest.DB {
		path := filepath.Join(t.TempDir(), "petrel.db")
		return storetest.DB{
			Open: func() (store.Store, error) { return Open(context.Background(), path, testLog(t)) },
			Exec: func(q string) error {
				db, err := sql.Open("sqlite", "file:"+path)
				if err != nil {
					return err
				}
				defer db.Close()
				_, err = db.Exec(q)
				return err
			},
		}
	})
}

func TestPragmas(t *testing.T) {
	s := openTemp(t)
	for q, want := range map[string]string{
		"PRAGMA journal_mode": "wal", "PRAGMA synchronous": "2", "PRAGMA foreign_keys": "1", "PRAGMA busy_timeout": "10000",
	} {
		for name, db := range map[string]*sql.DB{"write": s.write, "read": s.read} {
			var got string
			if err := db.QueryRow(q).Scan(&got); err != nil || got != want {
				t.Errorf("%s on %s pool = %q, %v; want %q", q, name, got, err, want)
			}
		}
	}
}

func TestUniqueField(t *testing.T) {
	for msg, want := range map[string]string{
		"constraint failed: UNIQUE constraint failed: peers.account_id, peers.ip (2067)": "peer ip",
		"UNIQUE constraint failed: groups.account_id, groups.name":                       "group name",
		"UNIQUE constraint failed: setup_keys.key_hash (2067)":                           "setup key hash",
		"UNIQUE constraint failed: accounts.id (1555)":                                   "account id",
		"something else": "value",
	} {
		if got := uniqueField(msg); got != want {
			t.Errorf("uniqueField(%q) = %q, want %q", msg, got, want)
		}
	}
}

func BenchmarkUpdatePutPeer(b *testing.B) { storetest.BenchUpdatePut(b, openTemp(b)) }

func BenchmarkLoadAccounts5000(b *testing.B) { storetest.BenchLoadAccounts(b, openTemp(b), 5000) }

// TestSecondOpenRefused: a second Store on the same database file (in this
// process: flock locks belong to the open file description, so this
// conflicts exactly as a second petrel-server would) is refused with an
// error naming the data directory and the holder's pid; Close releases the
// lock.
func TestSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "petrel.db")
	ctx := context.Background()
	s, err := Open(ctx, path, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, path, testLog(t))
	if err == nil {
		s2.Close()
		s.Close()
		t.Fatal("second open succeeded, want store.ErrLocked")
	}
	msg := err.Error()
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(msg, dir) ||
		!strings.Contains(msg, fmt.Sprintf("pid %d", os.Getpid())) {
		s.Close()
		t.Fatalf("second open: %v; want store.ErrLocked naming %s and pid %d", err, dir, os.Getpid())
	}
	// The same file through another spelling of the path is the same lock.
	if s3, err := Open(ctx, filepath.Join(dir, ".", "petrel.db"), testLog(t)); !errors.Is(err, store.ErrLocked) {
		if s3 != nil {
			s3.Close()
		}
		s.Close()
		t.Fatalf("open via other path: %v, want store.ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path, testLog(t))
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	s.Close()
}
