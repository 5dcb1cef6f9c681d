package grpcapi

import (
	"context"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"petrel/client/mgmt"
	"petrel/internal/keys"
	"petrel/management"
	"petrel/management/store"
	"petrel/management/store/storeopen"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// backend opens one database, possibly several times in a row.
type backend struct {
	name string
	open func(t testing.TB) store.Store
}

// sqliteBackend is a fresh SQLite database in a temporary directory.
func sqliteBackend(t testing.TB) backend {
	dir := t.TempDir()
	return backend{name: "sqlite", open: func(t testing.TB) store.Store {
		st, err := storeopen.Open(context.Background(), "sqlite", dir, testLog(t))
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		return st
	}}
}

// backends lists the stores the tests run against: SQLite always,
// PostgreSQL when PETREL_TEST_POSTGRES_DSN is set (in CI it must be).
func backends(t testing.TB) []backend {
	out := []backend{sqliteBackend(t)}
	if pg, ok := postgresBackend(t); ok {
		out = append(out, pg)
	} else if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but PETREL_TEST_POSTGRES_DSN is unset: the PostgreSQL variants must run in CI")
	}
	return out
}

func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// env is a management service served over gRPC on loopback.
type env struct {
	svc    *management.Service
	addr   string
	acct   string
	client *mgmt.Client
}

func startEnv(t testing.TB, st store.Store, opts ...func(*management.Config)) *env {
	t.Helper()
	cfg := management.Config{
		Store:  st,
		Logger: testLog(t),
		Server: management.ServerInfo{
			PublicURL: "http://mgmt.lab.test:8080",
			STUNURLs:  []string{"stun:stun.lab.test:3478"},
			RelayURLs: []string{"rel://relay.lab.test:8080"},
		},
		MintRelayToken: func(peer keys.Public, exp time.Time) string { return "tok-" + peer.Short() },
	}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := management.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	New(svc, svc.ServerKey(), testLog(t)).Register(gs)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	c, err := mgmt.Dial(context.Background(), "http://"+lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		svc.Stop()
		gs.Stop()
		<-served
		st.Close()
	})
	ids := svc.Accounts()
	return &env{svc: svc, addr: lis.Addr().String(), acct: ids[0], client: c}
}

func newKey(t testing.TB) keys.Private {
	t.Helper()
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (e *env) setupKey(t testing.TB, in management.SetupKeyInput) string {
	t.Helper()
	if in.Name == "" {
		in.Name = "test"
	}
	_, plain, err := e.svc.CreateSetupKey(testCtx(t), e.acct, in)
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

func (e *env) peers(t testing.TB) int {
	t.Helper()
	snap, err := e.svc.Snapshot(e.acct)
	if err != nil {
		t.Fatal(err)
	}
	return len(snap.Peers)
}
