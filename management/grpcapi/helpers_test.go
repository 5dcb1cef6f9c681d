package grpcapi

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"petrel/client/mgmt"
	"petrel/internal/keys"
	"petrel/management"
	"petrel/management/internal/mgmttest"
	"petrel/management/store"
	"petrel/management/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return storetest.Log(t, slog.LevelDebug)
	}
	return slog.New(slog.DiscardHandler)
}

type backend = mgmttest.Backend

func sqliteBackend(t testing.TB) backend { return mgmttest.SQLite(t, testLog) }

func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	mgmttest.ForEachBackend(t, testLog, fn)
}

// env is a management service served over gRPC on loopback.
type env struct {
	grpc   *Server
	svc    *management.Service
	addr   string
	acct   string
	client *mgmt.Client
}

func startEnv(t testing.TB, st store.Store, opts ...func(*management.Config)) *env {
	t.Helper()
	return startEnvWith(t, st, nil, opts...)
}

// startEnvWith is startEnv with options for the gRPC server (interceptors).
func startEnvWith(t testing.TB, st store.Store, srvOpts []grpc.ServerOption, opts ...func(*management.Config)) *env {
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
	gs := grpc.NewServer(srvOpts...)
	gsrv := New(svc, svc.ServerKey(), testLog(t))
	gsrv.Register(gs)
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
	return &env{grpc: gsrv, svc: svc, addr: lis.Addr().String(), acct: ids[0], client: c}
}

func (e *env) setupKey(t testing.TB, in management.SetupKeyInput) string {
	t.Helper()
	if in.Name == "" {
		in.Name = "test"
	}
	_, plain, err := e.svc.CreateSetupKey(mgmttest.Ctx(t), e.acct, in)
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

// stamped returns a replay-protection stamp for a hand-sealed request.
func stamped() (int64, []byte) {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	return time.Now().UnixMilli(), nonce
}
