package ui_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"petrel/internal/keys"
	"petrel/management"
	"petrel/management/identity"
	"petrel/management/model"
	"petrel/management/store/sqlite"
	"petrel/management/ui"
	"petrel/proto/managementpb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// chromedp's allocator leaves its process reaper briefly.
		goleak.IgnoreTopFunction("os/exec.(*Cmd).watchCtx"),
		goleak.IgnoreAnyFunction("github.com/chromedp/chromedp.(*ExecAllocator).Allocate.func2"),
	)
}

const fakeIssuer = "https://idp.test"

// fakeIdP names users by token, as access tokens (Authenticate) and ID
// tokens (agent sign-in). The dashboard signs in with admin tokens and
// personal access tokens only; the provider just creates the users.
type fakeIdP struct {
	mu  sync.Mutex
	ids map[string]identity.Identity
}

func (f *fakeIdP) lookup(token string) (*identity.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.ids[token]
	if !ok {
		return nil, fmt.Errorf("%w: unknown to the fake provider", identity.ErrSignature)
	}
	return &id, nil
}

func (f *fakeIdP) Verify(_ context.Context, raw string, _ ...identity.VerifyOption) (*identity.Identity, error) {
	return f.lookup(raw)
}

func (f *fakeIdP) UserInfo(_ context.Context, token string) (*identity.Identity, error) {
	return f.lookup(token)
}

// clock is the wall clock plus an offset tests advance.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// env is a real management service on SQLite with the dashboard on a
// loopback httptest server.
type env struct {
	t     *testing.T
	svc   *management.Service
	srv   *httptest.Server
	admin string // the admin token
	acct  string
	idp   *fakeIdP
	clock *clock
}

func testLog() *slog.Logger {
	if os.Getenv("PETREL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "petrel.db"), testLog())
	if err != nil {
		t.Fatal(err)
	}
	idp, clk := &fakeIdP{ids: map[string]identity.Identity{}}, &clock{}
	svc, err := management.New(management.Config{Store: st, Logger: testLog(), Now: clk.Now,
		Identity: &management.IdentityConfig{Verifier: idp, Issuer: fakeIssuer, ClientID: "petrel"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	token, _, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := svc.AuthenticateToken(token)
	mux := http.NewServeMux()
	mux.Handle("/ui/", ui.New(svc, ui.Options{Logger: testLog(), Now: clk.Now}))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		svc.Stop() // ends event streams
		srv.Close()
		_ = st.Close()
	})
	return &env{t: t, svc: svc, srv: srv, admin: token, acct: acct, idp: idp, clock: clk}
}

// ctx acts as the admin token in service calls.
func (e *env) ctx() context.Context {
	return management.WithPrincipal(context.Background(), management.Principal{AccountID: e.acct, Role: model.RoleOwner, Via: "test"})
}

func (e *env) snapshot() *model.Account {
	e.t.Helper()
	a, err := e.svc.Snapshot(e.acct)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) setupKey() string {
	e.t.Helper()
	_, key, err := e.svc.CreateSetupKey(e.ctx(), e.acct, management.SetupKeyInput{Name: "test", Reusable: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return key
}

// addPeer registers a peer with a setup key, as an agent's login does.
func (e *env) addPeer(key, hostname string) (*model.Peer, keys.Private) {
	e.t.Helper()
	priv, err := keys.NewPrivate()
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.svc.Login(context.Background(), priv.Public(), &managementpb.LoginRequest{SetupKey: key, Hostname: hostname,
		Meta: &managementpb.PeerMeta{Hostname: hostname, Os: "linux", AgentVersion: "test"}})
	if err != nil {
		e.t.Fatalf("register %q: %v", hostname, err)
	}
	return e.snapshot().Peers[resp.GetPeerConfig().GetPeerId()], priv
}

// person is a user of the fake provider with a personal access token.
type person struct{ id, email, oidc, pat string }

// user creates name@example.com with role and a personal access token.
func (e *env) user(name string, role model.Role) person {
	e.t.Helper()
	// The service takes only JWT-shaped OpenID tokens (three dot-separated
	// parts); the fake provider accepts this one.
	p := person{email: name + "@example.com", oidc: "hdr." + name + ".sig"}
	e.idp.mu.Lock()
	e.idp.ids[p.oidc] = identity.Identity{Issuer: fakeIssuer, Subject: "sub-" + name, Email: p.email, EmailVerified: true}
	e.idp.mu.Unlock()
	pr, err := e.svc.Authenticate(context.Background(), p.oidc)
	if err != nil {
		e.t.Fatal(err)
	}
	p.id = pr.UserID
	if role != model.RoleUser {
		if _, err := e.svc.UpdateUser(e.ctx(), e.acct, p.id, management.UserUpdate{Role: &role}); err != nil {
			e.t.Fatal(err)
		}
	}
	_, p.pat, err = e.svc.CreateAccessToken(management.WithPrincipal(context.Background(), pr), e.acct, p.id,
		management.AccessTokenInput{Name: "dashboard"})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// userPeer registers a peer of p, as an agent signing in does.
func (e *env) userPeer(p person, hostname string) (*model.Peer, keys.Private) {
	e.t.Helper()
	priv, err := keys.NewPrivate()
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.svc.Login(context.Background(), priv.Public(), &managementpb.LoginRequest{Jwt: p.oidc, Hostname: hostname})
	if err != nil {
		e.t.Fatalf("login %s as %s: %v", hostname, p.email, err)
	}
	return e.snapshot().Peers[resp.GetPeerConfig().GetPeerId()], priv
}

// connect opens the peer's Sync stream (it shows as connected) until the
// returned function is called.
func (e *env) connect(k keys.Private) (disconnect func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	first := make(chan struct{}, 1)
	go func() {
		defer close(done)
		_ = e.svc.Sync(ctx, k.Public(), &managementpb.SyncRequest{}, func(*managementpb.SyncResponse) error {
			select {
			case first <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		e.t.Fatal("sync did not start")
	}
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(stop)
	return stop
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see each response.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values, hdr ...string) resp {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.srv.URL+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer r.Body.Close()
	raw, _ := io.ReadAll(r.Body)
	return resp{status: r.StatusCode, header: r.Header, body: string(raw)}
}

func (b *browser) get(path string) resp { b.e.t.Helper(); return b.do("GET", path, nil) }

func (b *browser) post(path string, form url.Values) resp {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return b.do("POST", path, form)
}

// signIn signs the browser in with token and checks it lands on next.
func (b *browser) signIn(token string) {
	b.e.t.Helper()
	r := b.post("/ui/login", url.Values{"token": {token}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/peers" {
		b.e.t.Fatalf("sign in: status %d location %q body %s", r.status, r.header.Get("Location"), r.body)
	}
}

// want checks a response's status and that its body contains each string.
func (r resp) want(t *testing.T, status int, contains ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body:\n%s", r.status, status, r.body)
	}
	for _, s := range contains {
		if !strings.Contains(r.body, s) {
			t.Fatalf("body lacks %q:\n%s", s, r.body)
		}
	}
}

func loginRequest(key, hostname string) *managementpb.LoginRequest {
	return &managementpb.LoginRequest{SetupKey: key, Hostname: hostname,
		Meta: &managementpb.PeerMeta{Hostname: hostname, Os: "linux", AgentVersion: "test"}}
}
