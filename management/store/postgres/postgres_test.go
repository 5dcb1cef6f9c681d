package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"petrel/management/model"
	"petrel/management/store"
	"petrel/management/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// adminDSN returns PETREL_TEST_POSTGRES_DSN, skipping the test when it is
// unset (failing instead when CI=true: CI must run these tests).
func adminDSN(t testing.TB) string {
	dsn := os.Getenv("PETREL_TEST_POSTGRES_DSN")
	if dsn == "" {
		msg := "PostgreSQL tests need PETREL_TEST_POSTGRES_DSN (a server where the user may CREATE DATABASE); " +
			`start one with: eval "$(scripts/pg-start.sh)"`
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dsn
}

// withDB returns dsn pointing at database name (URL or keyword/value form).
func withDB(dsn, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			u.Path = "/" + name
			return u.String()
		}
	}
	return dsn + " dbname=" + name
}

// freshDB creates an empty database with a random name, dropped at cleanup,
// and returns its DSN.
func freshDB(t testing.TB) string {
	admin := adminDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var b [8]byte
	rand.Read(b[:])
	name := "petrel_test_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to test server: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("connect to drop test database: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	return withDB(admin, name)
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func openFresh(t testing.TB) *Store {
	dsn := freshDB(t)
	s, err := Open(context.Background(), dsn, testLog(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t) })
}

func TestReopen(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T) storetest.DB {
		dsn := freshDB(t)
		return storetest.DB{
			Open: func() (store.Store, error) { return Open(context.Background(), dsn, testLog(t)) },
			Exec: func(q string) error {
				ctx := context.Background()
				conn, err := pgx.Connect(ctx, dsn)
				if err != nil {
					return err
				}
				defer conn.Close(ctx)
				_, err = conn.Exec(ctx, q)
				return err
			},
		}
	})
}

// TestSerializationRetry makes the first attempt fail with SQLSTATE 40001
// (a row changed by another transaction after our snapshot) and checks
// that Update runs fn again and commits.
func TestSerializationRetry(t *testing.T) {
	dsn := freshDB(t)
	ctx := context.Background()
	s, err := Open(ctx, dsn, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hash := []byte("0123456789abcdef0123456789abcdef")
	if err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateAccount(model.NewAccount("acc", netip.MustParsePrefix("100.64.0.0/16"), time.Unix(1, 0).UTC())); err != nil {
			return err
		}
		return tx.Put("acc", &model.SetupKey{ID: "k", KeyHash: hash, Reusable: true})
	}); err != nil {
		t.Fatal(err)
	}
	other, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	calls := 0
	err = s.Update(ctx, func(tx store.Tx) error {
		calls++
		if _, _, err := tx.UseSetupKey([]byte("unknown"), time.Unix(2, 0)); !errors.Is(err, store.ErrKeyInvalid) {
			return err // takes the snapshot
		}
		if calls == 1 {
			if _, err := other.Exec(ctx, "UPDATE setup_keys SET used_times = 5"); err != nil {
				return err
			}
		}
		_, _, err := tx.UseSetupKey(hash, time.Unix(3, 0))
		return err
	})
	if err != nil || calls != 2 {
		t.Fatalf("update: err=%v calls=%d, want nil after 2 calls", err, calls)
	}
	list, err := s.LoadAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := list[0].SetupKeys["k"].UsedTimes; got != 6 {
		t.Fatalf("used times %d, want 6", got)
	}
}

func TestRetryable(t *testing.T) {
	if retryable(errors.New("x")) {
		t.Fatal("plain error retryable")
	}
}

func BenchmarkUpdatePutPeer(b *testing.B) { storetest.BenchUpdatePut(b, openFresh(b)) }

func BenchmarkLoadAccounts5000(b *testing.B) { storetest.BenchLoadAccounts(b, openFresh(b), 5000) }
