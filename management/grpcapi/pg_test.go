package grpcapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"petrel/management/store"
	"petrel/management/store/storeopen"
)

// postgresBackend returns a fresh PostgreSQL database (dropped at cleanup)
// when PETREL_TEST_POSTGRES_DSN is set (start one with
// eval "$(scripts/pg-start.sh)").
func postgresBackend(t testing.TB) (backend, bool) {
	admin := os.Getenv("PETREL_TEST_POSTGRES_DSN")
	if admin == "" {
		return backend{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var b [8]byte
	rand.Read(b[:])
	name := "petrel_mgmt_test_" + hex.EncodeToString(b[:])
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
	dsn := admin + " dbname=" + name
	if strings.HasPrefix(admin, "postgres://") || strings.HasPrefix(admin, "postgresql://") {
		if u, err := url.Parse(admin); err == nil {
			u.Path = "/" + name
			dsn = u.String()
		}
	}
	return backend{name: "postgres", open: func(t testing.TB) store.Store {
		st, err := storeopen.Open(context.Background(), dsn, "", testLog(t))
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		return st
	}}, true
}
