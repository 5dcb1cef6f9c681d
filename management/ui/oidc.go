package ui

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"petrel/management"
	"petrel/management/identity"
)

// OIDC turns on "Sign in with <provider>": the dashboard runs the OpenID
// Connect authorization-code flow with PKCE (S256) against the server's
// identity provider, verifies the ID token itself and gives the browser
// only its session cookie (docs/dashboard.md).
type OIDC struct {
	// Name is shown on the button; default the issuer's host.
	Name string
	// Issuer is the provider (discovered at
	// Issuer/.well-known/openid-configuration, which must name it exactly).
	Issuer string
	// ClientID is the dashboard's client at the provider; ClientSecret
	// makes it confidential (sent with HTTP Basic authentication), empty
	// leaves it public (PKCE alone binds the code to this server).
	ClientID     string
	ClientSecret string
	// RedirectURL is the absolute URL of /ui/login/callback as browsers
	// reach it, registered at the provider for ClientID.
	RedirectURL string
	// Scopes asked for; default openid, profile, email ("openid" is
	// added when missing).
	Scopes []string
	// Verifier checks the ID token: signature, issuer, audience (it must
	// accept ClientID), expiry and the nonce passed with
	// identity.ExpectNonce. The server's verifier for this client.
	Verifier management.TokenVerifier
	// HTTPClient talks to the provider (discovery, token endpoint);
	// default a client with a 30 s timeout.
	HTTPClient *http.Client
}

// IdentitySignIn is what the OpenID sign-in needs from the service on top
// of Service; *management.Service implements it.
type IdentitySignIn interface {
	SignInWithIdentity(ctx context.Context, who *identity.Identity) (management.Principal, error)
}

// The sign-in attempt cookie binds an attempt to the browser that started
// it. It carries only a random value; the attempt (state, nonce, PKCE
// verifier, where to go next) stays in this process, keyed by the value's
// SHA-256. SameSite=Lax, not Strict: the provider's redirect back is a
// cross-site top-level navigation, on which Lax cookies are sent. Over TLS
// the __Host- prefix pins it to this host and Path=/ (like the session
// cookie).
const (
	oidcCookieTLS   = "__Host-petrel_oidc"
	oidcCookiePlain = "petrel_oidc"
	// attemptTTL is how long a sign-in may take at the provider.
	attemptTTL = 10 * time.Minute
	// maxAttempts bounds the attempts in progress, maxAttemptsPerSource
	// those started from one address.
	maxAttempts          = 10000
	maxAttemptsPerSource = 20
	// retryDiscovery spaces discovery attempts after a failure.
	retryDiscovery  = 10 * time.Second
	maxProviderBody = 1 << 20
)

// oidcLogin runs the code flow for the dashboard.
type oidcLogin struct {
	cfg    OIDC
	svc    IdentitySignIn
	client *http.Client
	now    func() time.Time
	log    *slog.Logger

	dmu     sync.Mutex // discovery
	ep      *endpoints
	lastErr error
	lastTry time.Time

	amu      sync.Mutex
	attempts map[[sha256.Size]byte]*attempt // by SHA-256 of the cookie value
	// shared, when set (--ha), holds the attempts too, so the callback may
	// reach any instance; the map above then only counts this instance's
	// attempts for the limits.
	shared SharedState
}

type endpoints struct{ auth, token string }

// attempt is one sign-in in progress: what the callback must find again.
type attempt struct {
	state, nonce, verifier string
	next                   string
	src                    netip.Addr
	created                time.Time
}

// newOIDCLogin returns nil (no button, no flow) when cfg is nil; a
// configuration that cannot work is logged and also turns it off.
func newOIDCLogin(cfg *OIDC, svc Service, log *slog.Logger, now func() time.Time, shared SharedState) *oidcLogin {
	if cfg == nil {
		return nil
	}
	signIn, ok := svc.(IdentitySignIn)
	var problem string
	switch {
	case !ok:
		problem = "the service cannot sign in identities"
	case cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" || cfg.Verifier == nil:
		problem = "issuer, client ID, redirect URL and verifier are required"
	}
	if problem != "" {
		log.Error("dashboard sign-in with the identity provider is off", "reason", problem)
		return nil
	}
	o := &oidcLogin{cfg: *cfg, svc: signIn, client: cfg.HTTPClient, now: now, log: log,
		attempts: map[[sha256.Size]byte]*attempt{}, shared: shared}
	if o.cfg.Name == "" {
		o.cfg.Name = cfg.Issuer
		if u, err := url.Parse(cfg.Issuer); err == nil && u.Host != "" {
			o.cfg.Name = u.Hostname()
		}
	}
	if len(o.cfg.Scopes) == 0 {
		o.cfg.Scopes = []string{"openid", "profile", "email"}
	} else if !strings.Contains(" "+strings.Join(o.cfg.Scopes, " ")+" ", " openid ") {
		o.cfg.Scopes = append([]string{"openid"}, o.cfg.Scopes...)
	}
	if o.client == nil {
		o.client = &http.Client{Timeout: 30 * time.Second}
	}
	return o
}

// oidcName is the provider's name for the sign-in page ("" when off).
func (h *Handler) oidcName() string {
	if h.oidc == nil {
		return ""
	}
	return h.oidc.cfg.Name
}

func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func (h *Handler) oidcCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	c := &http.Cookie{Name: oidcCookiePlain, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: maxAge}
	if h.secure(r) {
		c.Name, c.Secure = oidcCookieTLS, true
	}
	return c
}

// oidcStart (POST /ui/login/oidc, form field next; a POST so that the
// cross-origin protection keeps other sites from starting sign-ins in a
// visitor's browser) starts a sign-in: fresh state,
// nonce and PKCE verifier are kept server-side under a fresh random
// cookie value, and the browser goes to the provider's authorization
// endpoint with the state, the nonce and the verifier's S256 challenge.
func (h *Handler) oidcStart(w http.ResponseWriter, r *http.Request) {
	o := h.oidc
	if o == nil {
		h.renderError(w, r, http.StatusNotFound, "this server has no identity provider for the dashboard: sign in with a token")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	_ = r.ParseForm() // an unreadable form starts a sign-in to the default page
	next := localNext(r.PostForm.Get("next"))
	src := sourceAddr(r)
	if ok, wait := h.fails.Check(src); !ok {
		h.tooMany(w, r, next, src, wait)
		return
	}
	ep, err := o.discover(r.Context())
	if err != nil {
		h.log.Warn("identity provider discovery failed", "issuer", o.cfg.Issuer, "err", err)
		h.loginError(w, r, http.StatusServiceUnavailable, next,
			"the identity provider cannot be reached; try again later, or sign in with a token")
		return
	}
	var vals [4]string
	for i := range vals {
		if vals[i], err = randomToken(); err != nil {
			h.log.Error("random", "err", err)
			h.loginError(w, r, http.StatusInternalServerError, next, "internal error")
			return
		}
	}
	binding := vals[3]
	a := &attempt{state: vals[0], nonce: vals[1], verifier: vals[2], next: next, src: src, created: o.now()}
	var old string
	if c, err := r.Cookie(h.oidcCookieName(r)); err == nil {
		old = c.Value // this browser's earlier attempt is superseded
	}
	if err := o.add(binding, old, a); err != nil {
		h.loginError(w, r, http.StatusServiceUnavailable, next, err.Error())
		return
	}
	challenge := sha256.Sum256([]byte(a.verifier))
	target, err := url.Parse(ep.auth)
	if err != nil {
		h.loginError(w, r, http.StatusBadGateway, next, "the identity provider's authorization endpoint is not a URL")
		return
	}
	q := target.Query()
	q.Set("response_type", "code")
	q.Set("client_id", o.cfg.ClientID)
	q.Set("redirect_uri", o.cfg.RedirectURL)
	q.Set("scope", strings.Join(o.cfg.Scopes, " "))
	q.Set("state", a.state)
	q.Set("nonce", a.nonce)
	q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(challenge[:]))
	q.Set("code_challenge_method", "S256")
	target.RawQuery = q.Encode()
	http.SetCookie(w, h.oidcCookie(r, binding, int(attemptTTL/time.Second)))
	http.Redirect(w, r, target.String(), http.StatusSeeOther)
}

func (h *Handler) oidcCookieName(r *http.Request) string {
	if h.secure(r) {
		return oidcCookieTLS
	}
	return oidcCookiePlain
}

// add stores a new attempt under binding (dropping the browser's earlier
// one, old), after sweeping expired attempts. It never refuses: past
// maxAttemptsPerSource attempts from the attempt's source, or maxAttempts
// in all, the oldest goes (an attempt is bound to its browser's cookie,
// so nobody gains from another's; refusing new ones would let a flood of
// abandoned sign-ins lock everyone out for attemptTTL).
func (o *oidcLogin) add(binding, old string, a *attempt) error {
	now := a.created
	o.amu.Lock()
	defer o.amu.Unlock()
	if old != "" {
		delete(o.attempts, sha256.Sum256([]byte(old)))
	}
	var fromSrc [][sha256.Size]byte
	for k, v := range o.attempts {
		switch {
		case now.Sub(v.created) >= attemptTTL:
			delete(o.attempts, k)
		case sameSource(v.src, a.src):
			fromSrc = append(fromSrc, k)
		}
	}
	o.evictOldest(fromSrc, len(fromSrc)-maxAttemptsPerSource+1)
	if n := len(o.attempts) - maxAttempts + 1; n > 0 {
		o.evictOldest(slices.Collect(maps.Keys(o.attempts)), n)
	}
	if o.shared != nil {
		if err := o.putShared(binding, old, a); err != nil {
			return err
		}
	}
	o.attempts[sha256.Sum256([]byte(binding))] = a
	return nil
}

// evictOldest drops the n oldest of the attempts keys; amu is held.
func (o *oidcLogin) evictOldest(keys [][sha256.Size]byte, n int) {
	if n <= 0 {
		return
	}
	slices.SortFunc(keys, func(x, y [sha256.Size]byte) int { return o.attempts[x].created.Compare(o.attempts[y].created) })
	for _, k := range keys[:min(n, len(keys))] {
		delete(o.attempts, k)
	}
}

// sameSource reports whether two sign-ins come from one source: the same
// IPv4 address, or the same IPv6 /64 (one host usually holds a whole one).
func sameSource(a, b netip.Addr) bool {
	if a.Is4() || a.Is4In6() || b.Is4() || b.Is4In6() {
		return a.Unmap() == b.Unmap()
	}
	pa, _ := a.Prefix(64)
	pb, _ := b.Prefix(64)
	return pa == pb
}

// Why a callback finds no usable attempt; shown as they are.
var (
	errNoAttempt = errors.New("no sign-in is in progress in this browser: it was already completed, " +
		"it expired, or it was started in another browser; start again")
	errStateMismatch = errors.New("the provider's answer does not belong to the sign-in started in this browser " +
		"(state mismatch); start again")
	errAttemptExpired = fmt.Errorf("the sign-in took too long (more than %v); start again", attemptTTL)
)

// take removes and returns the attempt of the browser's cookie value, if
// the callback's state is its state (compared in constant time) and it
// has not expired. An attempt is used once, whatever the outcome.
func (o *oidcLogin) take(binding, state string) (*attempt, error) {
	if binding == "" {
		return nil, errNoAttempt
	}
	k := sha256.Sum256([]byte(binding))
	o.amu.Lock()
	a := o.attempts[k]
	delete(o.attempts, k)
	o.amu.Unlock()
	if o.shared != nil { // the database's copy decides: one instance takes it
		a = o.takeShared(k[:])
	}
	switch {
	case a == nil:
		return nil, errNoAttempt
	case state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(a.state)) != 1:
		return nil, errStateMismatch
	case o.now().Sub(a.created) >= attemptTTL:
		return nil, errAttemptExpired
	}
	return a, nil
}

// errorCode accepts the provider's error parameter for display only when
// it looks like an OAuth error code; the description is logged, never
// shown (anyone can put text in a URL).
var errorCode = regexp.MustCompile(`^[a-z_]{1,40}$`)

// oidcCallback (GET /ui/login/callback) ends a sign-in: the attempt of
// this browser must exist, match the state and be fresh; then the code is
// exchanged with the PKCE verifier, the ID token verified (issuer,
// audience, expiry, signature, nonce), the identity turned into the
// user's principal and a session opened. Any failure shows the sign-in
// page with the reason and opens no session.
func (h *Handler) oidcCallback(w http.ResponseWriter, r *http.Request) {
	o := h.oidc
	if o == nil {
		h.renderError(w, r, http.StatusNotFound, "this server has no identity provider for the dashboard: sign in with a token")
		return
	}
	src := sourceAddr(r)
	if ok, wait := h.fails.Check(src); !ok {
		h.tooMany(w, r, "/ui/peers", src, wait)
		return
	}
	// The attempt ends here, whatever happens: the cookie goes too.
	http.SetCookie(w, h.oidcCookie(r, "", -1))
	var binding string
	if c, err := r.Cookie(h.oidcCookieName(r)); err == nil {
		binding = c.Value
	}
	q := r.URL.Query()
	refuse := func(status int, next, msg string, reason any) {
		if status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusBadRequest {
			h.fails.Allow(src)
		}
		h.log.Info("dashboard sign-in with the identity provider refused", "source", src, "reason", reason)
		h.loginError(w, r, status, next, msg)
	}
	a, err := o.take(binding, q.Get("state"))
	if err != nil {
		refuse(http.StatusBadRequest, "/ui/peers", err.Error(), err)
		return
	}
	if e := q.Get("error"); e != "" {
		msg := "the identity provider did not sign you in"
		if errorCode.MatchString(e) {
			msg += " (" + e + ")"
		}
		if e == "access_denied" {
			msg = "the sign-in was refused at the identity provider (access_denied); nothing was signed in"
		}
		refuse(http.StatusForbidden, a.next, msg, e+": "+q.Get("error_description"))
		return
	}
	code := q.Get("code")
	if code == "" {
		refuse(http.StatusBadRequest, a.next, "the identity provider's answer has no code; start again", "no code")
		return
	}
	ep, err := o.discover(r.Context())
	if err != nil {
		refuse(http.StatusServiceUnavailable, a.next, "the identity provider cannot be reached; try again later", err)
		return
	}
	raw, err := o.exchange(r.Context(), ep.token, code, a.verifier)
	if err != nil {
		refuse(http.StatusBadGateway, a.next, "the identity provider did not redeem the sign-in: "+err.Error(), err)
		return
	}
	who, err := o.cfg.Verifier.Verify(r.Context(), raw, identity.ExpectNonce(a.nonce))
	if err != nil {
		status, msg := http.StatusUnauthorized, "the identity provider's ID token was refused: "+err.Error()
		switch {
		case errors.Is(err, identity.ErrUnavailable):
			status, msg = http.StatusServiceUnavailable, "the identity provider is unavailable; try again later"
		case errors.Is(err, identity.ErrDomain):
			status = http.StatusForbidden
			msg = "this account may not sign in here: " + err.Error()
		}
		refuse(status, a.next, msg, err)
		return
	}
	p, err := o.svc.SignInWithIdentity(r.Context(), who)
	if err != nil {
		refuse(management.KindOf(err).HTTPStatus(), a.next, errText(err), err)
		return
	}
	// A token created in this session may not outlive it (Principal.ExpiresAt).
	p.ExpiresAt = o.now().Add(absoluteTimeout)
	h.endOldSession(r)
	id, err := h.sessions.create(p, "")
	if err != nil {
		h.log.Error("create session", "err", err)
		h.loginError(w, r, http.StatusInternalServerError, a.next, "internal error")
		return
	}
	http.SetCookie(w, sessionCookie(h.secure(r), id, int(absoluteTimeout/time.Second)))
	h.log.Info("dashboard sign-in", "actor", p.Actor(), "via", "identity provider", "source", src)
	http.Redirect(w, r, a.next, http.StatusSeeOther)
}

func (h *Handler) tooMany(w http.ResponseWriter, r *http.Request, next string, src netip.Addr, wait time.Duration) {
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", fmt.Sprint(secs))
	h.loginError(w, r, http.StatusTooManyRequests, next,
		fmt.Sprintf("too many failed sign-ins from %s; retry in %v", src, time.Duration(secs)*time.Second))
}

// discover returns the provider's endpoints, fetched once (again after a
// failure, at most every retryDiscovery).
func (o *oidcLogin) discover(ctx context.Context) (*endpoints, error) {
	o.dmu.Lock()
	defer o.dmu.Unlock()
	if o.ep != nil {
		return o.ep, nil
	}
	if o.lastErr != nil && o.now().Sub(o.lastTry) < retryDiscovery {
		return nil, o.lastErr
	}
	o.lastTry = o.now()
	ep, err := o.fetchDiscovery(ctx)
	o.ep, o.lastErr = ep, err
	return ep, err
}

func (o *oidcLogin) fetchDiscovery(ctx context.Context) (*endpoints, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	u := strings.TrimSuffix(o.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var meta struct {
		Issuer string `json:"issuer"`
		Auth   string `json:"authorization_endpoint"`
		Token  string `json:"token_endpoint"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxProviderBody)).Decode(&meta); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if meta.Issuer != o.cfg.Issuer {
		return nil, fmt.Errorf("discovery names issuer %q, configured %q", meta.Issuer, o.cfg.Issuer)
	}
	for _, e := range []string{meta.Auth, meta.Token} {
		eu, err := url.Parse(e)
		if err != nil || eu.Host == "" || (eu.Scheme != "https" && !(eu.Scheme == "http" && strings.HasPrefix(o.cfg.Issuer, "http://"))) {
			return nil, fmt.Errorf("discovery: endpoint %q is not an absolute https URL", e)
		}
	}
	return &endpoints{auth: meta.Auth, token: meta.Token}, nil
}

// exchange redeems the code at the token endpoint with the PKCE verifier
// (and the client secret, if any) and returns the ID token.
func (o *oidcLogin) exchange(ctx context.Context, tokenURL, code, verifier string) (string, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {o.cfg.RedirectURL},
		"client_id": {o.cfg.ClientID}, "code_verifier": {verifier}}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if o.cfg.ClientSecret != "" {
		// RFC 6749 section 2.3.1: both form-encoded before Basic.
		req.SetBasicAuth(url.QueryEscape(o.cfg.ClientID), url.QueryEscape(o.cfg.ClientSecret))
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token endpoint: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		IDToken string `json:"id_token"`
		Error   string `json:"error"`
		Desc    string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxProviderBody)).Decode(&body); err != nil {
		return "", fmt.Errorf("token endpoint: %s, unreadable answer", resp.Status)
	}
	if resp.StatusCode != http.StatusOK || body.Error != "" {
		code := "error"
		if errorCode.MatchString(body.Error) {
			code = body.Error
		}
		o.log.Info("token endpoint refused the code", "status", resp.Status, "error", body.Error, "description", body.Desc)
		return "", fmt.Errorf("token endpoint answered %s (%s)", resp.Status, code)
	}
	if body.IDToken == "" {
		return "", errors.New("token endpoint answered without an ID token")
	}
	return body.IDToken, nil
}

// hostChars is what a host (and port) in a CSP source may hold.
var hostChars = regexp.MustCompile(`^[A-Za-z0-9.\-\[\]:]+$`)

// originOf is the scheme://host of an http(s) URL, or "" when it has none
// safe to put in a header.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || !hostChars.MatchString(u.Host) {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// loginCSP is the sign-in page's Content-Security-Policy: its "Sign in
// with" form posts here and is redirected to the provider's authorization
// endpoint, and browsers hold that redirect to form-action too, so the
// provider's origins (the issuer's and, once discovered, the endpoint's)
// are allowed there. Discovery is started (in the background) if it has
// not run yet.
func (o *oidcLogin) loginCSP() string {
	origins := []string{"'self'"}
	add := func(s string) {
		if s != "" && !slices.Contains(origins, s) {
			origins = append(origins, s)
		}
	}
	add(originOf(o.cfg.Issuer))
	o.dmu.Lock()
	if o.ep != nil {
		add(originOf(o.ep.auth))
	} else if o.lastErr == nil || o.now().Sub(o.lastTry) >= retryDiscovery {
		go func() { _, _ = o.discover(context.Background()) }() // bounded by fetchDiscovery's timeout
	}
	o.dmu.Unlock()
	return strings.Replace(CSP, "form-action 'self'", "form-action "+strings.Join(origins, " "), 1)
}
