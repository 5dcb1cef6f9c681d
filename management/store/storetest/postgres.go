package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresEnv names the variable holding the DSN of a PostgreSQL server on
// which the test user may CREATE DATABASE. Start one with
// eval "$(scripts/pg-start.sh)".
const PostgresEnv = "PETREL_TEST_POSTGRES_DSN"

const postgresHint = "PostgreSQL tests need " + PostgresEnv +
	" (a server where the user may CREATE DATABASE); " + `start one with: eval "$(scripts/pg-start.sh)"`

// NewPostgresDB creates an empty database with a random name on the server
// named by PETREL_TEST_POSTGRES_DSN, drops it at cleanup, and returns its
// DSN. It returns false when the variable is unset, failing the test
// instead when CI=true (CI must run the PostgreSQL variants).
func NewPostgresDB(t testing.TB) (dsn string, ok bool) {
	t.Helper()
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but " + postgresHint)
		}
		return "", false
	}
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
	return withDB(admin, name), true
}

// PostgresDSN is NewPostgresDB for tests that need PostgreSQL: it skips
// the test when PETREL_TEST_POSTGRES_DSN is unset (fails it when CI=true).
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn, ok := NewPostgresDB(t)
	if !ok {
		t.Skip(postgresHint)
	}
	return dsn
}

// withDB returns dsn pointing at database name (URL or keyword/value form).
func withDB(dsn, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.Path = "/" + name
			return u.String()
		}
	}
	return dsn + " dbname=" + name
}

// Log is a text logger at level that writes to t.Log.
func Log(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
