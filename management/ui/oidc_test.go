package ui_test

// Sign-in with the identity provider: the authorization-code flow with
// PKCE against the real OpenID provider of internal/oidctest, over HTTP
// with cookie jars (oidc_browser_test.go drives Chromium through it).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"petrel/internal/keys"
	"petrel/internal/oidctest"
	"petrel/management"
	"petrel/management/identity"
	"petrel/management/model"
	"petrel/management/store/sqlite"
	"petrel/management/ui"
	"petrel/proto/managementpb"
)

// oidcOpts vary the dashboard's side of oidcEnv.
type oidcOpts struct {
	secret string // the web client's secret ("": public client)
	// verifierClient is the client ID the dashboard's verifier accepts
	// (default the web client's: a token for another client is refused).
	verifierClient string
	domains        []string // AllowedEmailDomains of the verifier
	// shared, when set, runs two dashboards (instances) on it behind one
	// address, taking requests in turn (a round-robin load balancer).
	shared ui.SharedState
}

// oidcEnv is a real management service whose identity provider is a real
// OpenID provider, with the dashboard on an HTTPS loopback server (so the
// cookies are the __Host- ones).
type oidcEnv struct {
	t     *testing.T
	p     *oidctest.Provider
	svc   *management.Service
	srv   *httptest.Server
	base  string
	acct  string
	admin string
	clock *clock
	roots *x509.CertPool
}

func newOIDCEnv(t *testing.T, o oidcOpts) *oidcEnv {
	t.Helper()
	ctx := context.Background()
	p := oidctest.Start(t, oidctest.Config{WebClientSecret: o.secret, Users: []oidctest.User{
		{Subject: "u-alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice", Groups: []string{"eng"}},
		{Subject: "u-bob", Email: "bob@example.com", EmailVerified: true, Name: "Bob"},
	}})
	verifier := func(clientID string, domains []string) *identity.Verifier {
		v, err := identity.New(ctx, identity.Config{Issuer: p.Issuer(), ClientID: clientID, GroupsClaim: p.GroupsClaim(),
			AllowedEmailDomains: domains, HTTPClient: p.HTTPClient()})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "petrel.db"), testLog())
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	svc, err := management.New(management.Config{Store: st, Logger: testLog(), Now: clk.Now,
		Identity: &management.IdentityConfig{Verifier: verifier(p.ClientID(), nil), Issuer: p.Issuer(), ClientID: p.ClientID()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	admin, _, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := svc.AuthenticateToken(admin)

	srv := httptest.NewUnstartedServer(nil)
	base := "https://" + srv.Listener.Addr().String()
	p.AllowRedirect(base + "/ui/login/callback")
	if o.verifierClient == "" {
		o.verifierClient = p.WebClientID()
	}
	dashboard := func() http.Handler {
		return ui.New(svc, ui.Options{Logger: testLog(), Now: clk.Now, Shared: o.shared, OIDC: &ui.OIDC{
			Name: "TestIdP", Issuer: p.Issuer(), ClientID: p.WebClientID(), ClientSecret: o.secret,
			RedirectURL: base + "/ui/login/callback", Scopes: []string{"openid", "email", "profile", p.GroupsScope()},
			Verifier: verifier(o.verifierClient, o.domains), HTTPClient: p.HTTPClient(),
		}})
	}
	var h http.Handler = dashboard()
	if o.shared != nil {
		h = &roundRobin{hs: []http.Handler{h, dashboard()}}
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", h)
	srv.Config.Handler = mux
	srv.StartTLS()
	roots := p.CAPool().Clone()
	roots.AddCert(srv.Certificate())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		svc.Stop()
		srv.Close()
		_ = st.Close()
	})
	return &oidcEnv{t: t, p: p, svc: svc, srv: srv, base: base, acct: acct, admin: admin, clock: clk, roots: roots}
}

// oidcBrowser is an HTTP client with a cookie jar that trusts the
// dashboard and the provider. It does not follow redirects unless told
// to (follow), so tests see each step.
type oidcBrowser struct {
	e      *oidcEnv
	c      *http.Client
	follow bool
}

func (e *oidcEnv) browser() *oidcBrowser {
	jar, _ := cookiejar.New(nil)
	b := &oidcBrowser{e: e}
	b.c = &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots, MinVersion: tls.VersionTLS12}},
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if !b.follow || len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	e.t.Cleanup(b.c.CloseIdleConnections)
	return b
}

type oidcResp struct {
	status int
	header http.Header
	body   string
	url    *url.URL // of the last request (after redirects)
}

func (r oidcResp) cookie(name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// do requests u (absolute, or a path of the dashboard).
func (b *oidcBrowser) do(method, u string, form url.Values, extra ...*http.Cookie) oidcResp {
	b.e.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = b.e.base + u
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range extra {
		req.AddCookie(c)
	}
	r, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer r.Body.Close()
	raw, _ := io.ReadAll(r.Body)
	return oidcResp{status: r.StatusCode, header: r.Header, body: string(raw), url: r.Request.URL}
}

func (b *oidcBrowser) get(u string) oidcResp { b.e.t.Helper(); return b.do(http.MethodGet, u, nil) }

// start opens "Sign in with" and returns the provider URL the dashboard
// redirects to, and the attempt cookie it set.
func (b *oidcBrowser) start(next string) (authURL string, attempt *http.Cookie) {
	b.e.t.Helper()
	r := b.do(http.MethodPost, "/ui/login/oidc", url.Values{"next": {next}})
	loc := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(loc, b.e.p.Issuer()+"/authorize?") {
		b.e.t.Fatalf("start: status %d location %q body %s", r.status, loc, r.body)
	}
	c := r.cookie("__Host-petrel_oidc")
	if c == nil {
		b.e.t.Fatalf("start set no attempt cookie: %v", r.header["Set-Cookie"])
	}
	return loc, c
}

// signedInAs checks that the browser's session works and names who.
func (b *oidcBrowser) signedInAs(who string) {
	b.e.t.Helper()
	r := b.get("/ui/peers")
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="whoami">`+who) {
		b.e.t.Fatalf("not signed in as %s: status %d location %q", who, r.status, r.header.Get("Location"))
	}
}

// signedOut checks that the browser has no session.
func (b *oidcBrowser) signedOut() {
	b.e.t.Helper()
	r := b.get("/ui/peers")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/ui/login") {
		b.e.t.Fatalf("a session exists: GET /ui/peers: status %d location %q", r.status, r.header.Get("Location"))
	}
}

// refused checks a callback answer: the sign-in page with status and the
// message, no session cookie, the attempt cookie cleared.
func (r oidcResp) refused(t *testing.T, status int, msg string) {
	t.Helper()
	if r.status != status || !strings.Contains(r.body, msg) || !strings.Contains(r.body, `id="signin-oidc"`) {
		t.Fatalf("callback: status %d (want %d), want %q on the sign-in page; body:\n%s", r.status, status, msg, r.body)
	}
	if c := r.cookie("__Host-petrel_session"); c != nil && c.MaxAge >= 0 {
		t.Fatalf("a refused callback set a session cookie: %v", c)
	}
	if c := r.cookie("__Host-petrel_oidc"); c == nil || c.MaxAge >= 0 {
		t.Fatalf("the attempt cookie was not cleared: %v", r.header["Set-Cookie"])
	}
}

var formField = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]+)">`)

// TestOIDCSignIn walks the whole flow as a browser does, following every
// redirect with one cookie jar: the dashboard's sign-in page, "Sign in
// with TestIdP", the provider's login form, the provider's redirect back,
// the dashboard. Public and confidential web clients.
func TestOIDCSignIn(t *testing.T) {
	for _, secret := range []string{"", "web-secret"} {
		name := "public client"
		if secret != "" {
			name = "confidential client"
		}
		t.Run(name, func(t *testing.T) {
			e := newOIDCEnv(t, oidcOpts{secret: secret})
			b := e.browser()
			r := b.get("/ui/login")
			if r.status != http.StatusOK || !strings.Contains(r.body, "Sign in with TestIdP") || !strings.Contains(r.body, `name="token"`) {
				t.Fatalf("sign-in page: %d\n%s", r.status, r.body)
			}
			// Start: a 303 to the provider with state, nonce and an S256
			// challenge; the attempt cookie is host-only, HttpOnly, Secure, Lax.
			authURL, c := b.start("/ui/peers?q=x")
			au, _ := url.Parse(authURL)
			q := au.Query()
			for _, k := range []string{"state", "nonce", "code_challenge"} {
				if len(q.Get(k)) < 43 {
					t.Fatalf("authorization request %s = %q", k, q.Get(k))
				}
			}
			if q.Get("code_challenge_method") != "S256" || q.Get("client_id") != e.p.WebClientID() ||
				q.Get("redirect_uri") != e.base+"/ui/login/callback" || q.Get("response_type") != "code" {
				t.Fatalf("authorization request %v", q)
			}
			if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || c.MaxAge != 600 {
				t.Fatalf("attempt cookie %+v", c)
			}
			if strings.Contains(authURL, c.Value) {
				t.Fatal("the attempt cookie's value is in the authorization request")
			}

			// The provider: its login page, then the form, following all
			// redirects back to the dashboard.
			b.follow = true
			r = b.get(authURL)
			m := formField.FindStringSubmatch(r.body)
			if r.status != http.StatusOK || r.url.Host != au.Host || m == nil {
				t.Fatalf("provider login page: %d %s\n%s", r.status, r.url, r.body)
			}
			r = b.do(http.MethodPost, e.p.LoginURL(), url.Values{"id": {m[1]}, "username": {"alice@example.com"},
				"password": {e.p.Password(t, "u-alice")}, "action": {"allow"}})
			if r.status != http.StatusOK || r.url.String() != e.base+"/ui/peers?q=x" {
				t.Fatalf("after the provider: %d at %s\n%s", r.status, r.url, r.body)
			}
			b.follow = false
			b.signedInAs("alice@example.com")

			// The session cookie follows the token sign-in's rules; nothing
			// of the provider's tokens reaches the browser.
			u, _ := url.Parse(e.base)
			var names []string
			for _, c := range b.c.Jar.Cookies(u) {
				names = append(names, c.Name)
			}
			if strings.Join(names, ",") != "__Host-petrel_session" {
				t.Fatalf("cookies after sign-in: %v", names)
			}

			// A user was created (role user) and the sign-in is in the log.
			a, _ := e.svc.Snapshot(e.acct)
			var alice *model.User
			for _, u := range a.Users {
				if u.Subject == "u-alice" {
					alice = u
				}
			}
			if alice == nil || alice.Role != model.RoleUser || alice.Email != "alice@example.com" || alice.Issuer != e.p.Issuer() {
				t.Fatalf("user %+v", alice)
			}

			// Signing out ends it.
			r = b.do(http.MethodPost, "/ui/logout", url.Values{})
			if r.status != http.StatusSeeOther {
				t.Fatalf("logout: %d", r.status)
			}
			b.signedOut()
		})
	}
}

// signIn runs the flow with the helper of oidctest and checks the session
// cookie.
func (b *oidcBrowser) signIn(subject string) {
	b.e.t.Helper()
	authURL, _ := b.start("/ui/peers")
	r := b.get(b.e.p.AuthorizeCode(b.e.t, authURL, subject))
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/peers" {
		b.e.t.Fatalf("callback: %d %q\n%s", r.status, r.header.Get("Location"), r.body)
	}
	c := r.cookie("__Host-petrel_session")
	if c == nil || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		b.e.t.Fatalf("session cookie %+v", c)
	}
}

// TestOIDCUserRole: a user signed in with the provider sees only their
// own peers and no admin page; blocking them ends the session and refuses
// the next sign-in; the token form still works beside the provider.
func TestOIDCUserRole(t *testing.T) {
	e := newOIDCEnv(t, oidcOpts{})
	ctx := management.WithPrincipal(context.Background(), management.Principal{AccountID: e.acct, Role: model.RoleOwner, Via: "test"})
	_, setupKey, err := e.svc.CreateSetupKey(ctx, e.acct, management.SetupKeyInput{Name: "servers", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	register := func(req *managementpb.LoginRequest) {
		k, err := keys.NewPrivate()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Login(context.Background(), k.Public(), req); err != nil {
			t.Fatalf("register %s: %v", req.GetHostname(), err)
		}
	}
	register(loginRequest(setupKey, "db-server"))
	// Alice's agent signs in with an ID token of the agents' client.
	register(&managementpb.LoginRequest{Jwt: e.p.Mint(t, oidctest.Token{Subject: "u-alice"}), Hostname: "alice-laptop"})

	alice := e.browser()
	alice.signIn("u-alice")
	alice.signedInAs("alice@example.com")
	r := alice.get("/ui/peers")
	if !strings.Contains(r.body, "alice-laptop") || strings.Contains(r.body, "db-server") || !strings.Contains(r.body, "· user") {
		t.Fatalf("alice's peers page:\n%s", r.body)
	}
	if r := alice.get("/ui/setup-keys"); r.status != http.StatusForbidden || !strings.Contains(r.body, "needs the admin role") {
		t.Fatalf("admin page for a user: %d", r.status)
	}

	// The admin (token form, beside the provider's button) sees both.
	admin := e.browser()
	r = admin.do(http.MethodPost, "/ui/login", url.Values{"token": {e.admin}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("token sign-in: %d %s", r.status, r.body)
	}
	r = admin.get("/ui/peers")
	if !strings.Contains(r.body, "alice-laptop") || !strings.Contains(r.body, "db-server") {
		t.Fatalf("admin's peers page:\n%s", r.body)
	}

	// Block alice: her session ends on the next request, and she cannot
	// sign in again.
	var aliceID string
	a, _ := e.svc.Snapshot(e.acct)
	for _, u := range a.Users {
		if u.Subject == "u-alice" {
			aliceID = u.ID
		}
	}
	blocked := true
	if _, err := e.svc.UpdateUser(ctx, e.acct, aliceID, management.UserUpdate{Blocked: &blocked}); err != nil {
		t.Fatal(err)
	}
	if r := alice.get("/ui/peers"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/login?next=%2Fui%2Fpeers&reason=revoked" {
		t.Fatalf("blocked user's session: %d %q", r.status, r.header.Get("Location"))
	}
	again := e.browser()
	authURL, _ := again.start("/ui/peers")
	again.get(e.p.AuthorizeCode(t, authURL, "u-alice")).refused(t, http.StatusForbidden, "is blocked by an administrator")
	again.signedOut()
}

// TestOIDCStateMismatch: a callback whose state is not the one of this
// browser's attempt (a forged or swapped answer) opens no session, and
// the attempt is spent.
func TestOIDCStateMismatch(t *testing.T) {
	e := newOIDCEnv(t, oidcOpts{})
	b := e.browser()
	authURL, _ := b.start("/ui/peers")
	cb, _ := url.Parse(e.p.AuthorizeCode(t, authURL, "u-alice"))
	q := cb.Query()
	good := q.Get("state")
	q.Set("state", good[:len(good)-2]+"xx")
	cb.RawQuery = q.Encode()
	b.get(cb.String()).refused(t, http.StatusBadRequest, "state mismatch")
	b.signedOut()
	// The attempt is gone: the right state does not work after a wrong one.
	q.Set("state", good)
	cb.RawQuery = q.Encode()
	b.get(cb.String()).refused(t, http.StatusBadRequest, "no sign-in is in progress in this browser")
	b.signedOut()
}

// TestOIDCLoginCSRF: an attacker's own code and state, delivered to the
// victim's browser, sign the victim in as nobody: the victim's browser
// has no attempt, or one with another state.
func TestOIDCLoginCSRF(t *testing.T) {
	e := newOIDCEnv(t, oidcOpts{})
	attacker := e.browser()
	authURL, _ := attacker.start("/ui/peers")
	forged := e.p.AuthorizeCode(t, authURL, "u-bob")

	victim := e.browser()
	victim.get(forged).refused(t, http.StatusBadRequest, "no sign-in is in progress in this browser")
	victim.signedOut()

	authURL, _ = attacker.start("/ui/peers")
	forged = e.p.AuthorizeCode(t, authURL, "u-bob")
	victim.start("/ui/peers") // the victim's own attempt, never finished
	victim.get(forged).refused(t, http.StatusBadRequest, "state mismatch")
	victim.signedOut()
}

// TestOIDCReplayedCallback: a callback URL works once. Replayed in the
// same browser (its attempt cookie cleared), with the old attempt cookie
// put back, or in another browser, it opens no session.
func TestOIDCReplayedCallback(t *testing.T) {
	e := newOIDCEnv(t, oidcOpts{})
	b := e.browser()
	authURL, attempt := b.start("/ui/peers")
	cb := e.p.AuthorizeCode(t, authURL, "u-alice")
	if r := b.get(cb); r.status != http.StatusSeeOther || r.cookie("__Host-petrel_session") == nil {
		t.Fatalf("first callback: %d", r.status)
	}
	b.signedInAs("alice@example.com")

	b2 := e.browser()
	b2.get(cb).refused(t, http.StatusBadRequest, "no sign-in is in progress")
	b2.signedOut()
	b3 := e.browser()
	b3.do(http.MethodGet, cb, nil, &http.Cookie{Name: attempt.Name, Value: attempt.Value}).
		refused(t, http.StatusBadRequest, "no sign-in is in progress")
	b3.signedOut()
	r := b.get(cb)
	r.refused(t, http.StatusBadRequest, "no sign-in is in progress")
}

// TestOIDCWrongNonce: an ID token that carries another nonce than the
// attempt's (here the authorization request was altered on its way to
// the provider) is refused, though state and PKCE are right.
func TestOIDCWrongNonce(t *testing.T) {
	e := newOIDCEnv(t, oidcOpts{})
	b := e.browser()
	authURL, _ := b.start("/ui/peers")
	au, _ := url.Parse(authURL)
	q := au.Query()
	q.Set("nonce", "an-attackers-nonce-"+strings.Repeat("n", 30))
	au.RawQuery = q.Encode()
	b.get(e.p.AuthorizeCode(t, au.String(), "u-alice")).refused(t, http.StatusUnauthorized, "nonce does not match")
	b.signedOut()
}

// TestOIDCDenied: the user presses Deny at the provider; the provider
// sends error=access_denied and no session is opened.
func TestOIDCDenied(t *testing.T) {
	e := newOIDCEnv(t, oidcOpts{})
	b := e.browser()
	authURL, _ := b.start("/ui/peers")
	cb := e.p.DenyCode(t, authURL)
	if !strings.Contains(cb, "error=access_denied") {
		t.Fatalf("provider redirect %q", cb)
	}
	b.get(cb).refused(t, http.StatusForbidden, "refused at the identity provider (access_denied)")
	b.signedOut()
	// An error with a state of no attempt shows nothing of the URL.
	cb2, _ := url.Parse(cb)
	q := cb2.Query()
	q.Set("error_description", "call 555-0100 to unlock")
	cb2.RawQuery = q.Encode()
	r := b.get(cb2.String())
	r.refused(t, http.StatusBadRequest, "no sign-in is in progress")
	if strings.Contains(r.body, "555-0100") {
		t.Fatal("the provider's error description is shown")
	}
}

// TestOIDCExpiredAttempt: an attempt older than ten minutes is refused.
func TestOIDCExpiredAttempt(t *testing.T) {
	e := newOIDCEnv(t, oidcOpts{})
	b := e.browser()
	authURL, _ := b.start("/ui/peers")
	cb := e.p.AuthorizeCode(t, authURL, "u-alice")
	e.clock.advance(11 * time.Minute)
	b.get(cb).refused(t, http.StatusBadRequest, "took too long")
	b.signedOut()
}

// TestOIDCBadToken: an ID token the dashboard's verifier refuses (issued
// to another client; outside the allowed email domains) opens no session.
func TestOIDCBadToken(t *testing.T) {
	t.Run("audience", func(t *testing.T) {
		e := newOIDCEnv(t, oidcOpts{verifierClient: "some-other-client"})
		b := e.browser()
		authURL, _ := b.start("/ui/peers")
		b.get(e.p.AuthorizeCode(t, authURL, "u-alice")).refused(t, http.StatusUnauthorized, "id token for another client")
		b.signedOut()
	})
	t.Run("domain", func(t *testing.T) {
		e := newOIDCEnv(t, oidcOpts{domains: []string{"corp.example"}})
		b := e.browser()
		authURL, _ := b.start("/ui/peers")
		b.get(e.p.AuthorizeCode(t, authURL, "u-alice")).refused(t, http.StatusForbidden, "may not sign in here")
		b.signedOut()
	})
}

// TestOIDCOff: without an identity provider there is no button and no
// flow; the token form is the way in.
func TestOIDCOff(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := b.get("/ui/login")
	r.want(t, http.StatusOK, `name="token"`)
	if strings.Contains(r.body, "signin-oidc") {
		t.Fatal("a provider button without a provider")
	}
	b.do(http.MethodPost, "/ui/login/oidc", url.Values{}).want(t, http.StatusNotFound, "no identity provider")
	b.get("/ui/login/callback?code=x&state=y").want(t, http.StatusNotFound, "no identity provider")
}

// TestOIDCStartFlood: abandoned sign-ins (a page of another site cannot
// start them: the start is a POST behind the cross-origin protection; a
// script can) never lock anyone out: past the per-source bound the oldest
// go, and a real sign-in from the same address still works.
func TestOIDCStartFlood(t *testing.T) {
	e := newOIDCEnv(t, oidcOpts{})
	req, _ := http.NewRequest(http.MethodPost, e.base+"/ui/login/oidc", strings.NewReader("next=%2Fui%2Fpeers"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := e.browser().c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a sign-in started from another site: %d, want 403", resp.StatusCode)
	}
	for range 3 * 20 {
		e.browser().start("/ui/peers") // a fresh browser each time, never finishing
	}
	b := e.browser()
	b.signIn("u-alice")
	b.signedInAs("alice@example.com")
}

// TestOIDCSessionTokensExpire: a token made in a session opened through
// the provider may not outlive the session (a stolen session cookie must
// not turn into a lasting credential); signing in again ends the
// browser's earlier session.
func TestOIDCSessionTokensExpire(t *testing.T) {
	e := newOIDCEnv(t, oidcOpts{})
	b := e.browser()
	b.signIn("u-alice")
	var alice string
	snap, _ := e.svc.Snapshot(e.acct)
	for id, u := range snap.Users {
		if u.Subject == "u-alice" {
			alice = id
		}
	}
	role := model.RoleAdmin
	ctx := management.WithPrincipal(context.Background(), management.Principal{AccountID: e.acct, Role: model.RoleOwner, Via: "test"})
	if _, err := e.svc.UpdateUser(ctx, e.acct, alice, management.UserUpdate{Role: &role}); err != nil {
		t.Fatal(err)
	}
	r := b.get("/ui/tokens")
	if r.status != http.StatusOK || !strings.Contains(r.body, `name="expires_in" value="6d"`) || !strings.Contains(r.body, "must expire by") {
		t.Fatalf("tokens page in a provider session: %d\n%s", r.status, r.body)
	}
	r = b.do(http.MethodPost, "/ui/tokens/access", url.Values{"name": {"forever"}, "expires_in": {"never"}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "must expire by then") {
		t.Fatalf("a never-expiring token from a provider session: %d\n%s", r.status, r.body)
	}
	if r = b.do(http.MethodPost, "/ui/tokens/access", url.Values{"name": {"week"}, "expires_in": {"6d"}}); r.status != http.StatusCreated {
		t.Fatalf("a 6-day token: %d\n%s", r.status, r.body)
	}

	u, _ := url.Parse(e.base)
	var old *http.Cookie
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "__Host-petrel_session" {
			old = c
		}
	}
	b.signIn("u-alice")
	other := e.browser()
	if r := other.do(http.MethodGet, "/ui/peers", nil, old); r.status != http.StatusSeeOther {
		t.Fatalf("the session before signing in again still works: %d", r.status)
	}
	b.signedInAs("alice@example.com")
}
