package management

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"petrel/internal/keys"
	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/management/store"
	"petrel/management/store/storetest"
	"petrel/proto/managementpb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock { return &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testLog(t testing.TB) *slog.Logger { return storetest.Log(t, slog.LevelDebug) }

type backend = mgmttest.Backend

func sqliteBackend(t testing.TB) backend { return mgmttest.SQLite(t, testLog) }

func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	mgmttest.ForEachBackend(t, testLog, fn)
}

type svcOpt func(*Config)

// startService opens a service on st (closed at cleanup) and bootstraps it.
func startService(t testing.TB, st store.Store, opts ...svcOpt) (*Service, string) {
	t.Helper()
	cfg := Config{
		Store:  st,
		Logger: testLog(t),
		Server: ServerInfo{
			PublicURL: "http://mgmt.lab.test:8080",
			STUNURLs:  []string{"stun:stun.lab.test:3478", "stun:127.0.0.1:3478"},
			RelayURLs: []string{"rel://relay.lab.test:8080"},
		},
		MintRelayToken: func(peer keys.Public, exp time.Time) string { return "tok-" + peer.Short() },
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	token, _, err := s.Bootstrap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		st.Close()
	})
	return s, token
}

func onlyAccount(t testing.TB, s *Service) string {
	t.Helper()
	ids := s.Accounts()
	if len(ids) != 1 {
		t.Fatalf("accounts = %v, want one", ids)
	}
	return ids[0]
}

func login(s *Service, ctx context.Context, k keys.Private, setupKey, host string) (*managementpb.LoginResponse, error) {
	return s.Login(ctx, k.Public(), &managementpb.LoginRequest{
		SetupKey: setupKey, Hostname: host,
		Meta: &managementpb.PeerMeta{Hostname: host, Os: "linux", AgentVersion: "test"},
	})
}

func mustSetupKey(t testing.TB, s *Service, acct string, in SetupKeyInput) (*model.SetupKey, string) {
	t.Helper()
	if in.Name == "" {
		in.Name = "test key"
	}
	k, plain, err := s.CreateSetupKey(mgmttest.Ctx(t), acct, in)
	if err != nil {
		t.Fatalf("create setup key: %v", err)
	}
	return k, plain
}

func mustGroup(t testing.TB, s *Service, acct, name string, peers ...string) *model.Group {
	t.Helper()
	o, err := s.Put(mgmttest.Ctx(t), acct, &model.Group{Name: name, PeerIDs: peers})
	if err != nil {
		t.Fatalf("put group %s: %v", name, err)
	}
	return o.(*model.Group)
}

func wantKind(t testing.TB, err error, kind ErrorKind, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want kind %d", what, kind)
	}
	if KindOf(err) != kind {
		t.Fatalf("%s: error %q has kind %d, want %d", what, err, KindOf(err), kind)
	}
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func loginReq(setupKey, host string, labels ...string) *managementpb.LoginRequest {
	return &managementpb.LoginRequest{SetupKey: setupKey, Hostname: host, DnsLabels: labels,
		Meta: &managementpb.PeerMeta{Hostname: host, Os: "linux"}}
}
