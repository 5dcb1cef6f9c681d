package oidctest

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"petrel/internal/tlstest"
)

// User is a static account at the provider.
type User struct {
	Subject       string // the "sub" claim; required and unique
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	// Password signs the user in on the approval page; empty means a
	// random one (ApproveDevice knows it).
	Password string
}

// Config describes the provider. Zero values take the defaults noted.
type Config struct {
	Users []User
	// ClientID is the agent's public client (device flow, no secret);
	// default "petrel-agent".
	ClientID string
	// WebClientID is a second client, a web application (the dashboard)
	// that signs users in with the authorization-code flow and PKCE (S256,
	// required); default "petrel-web". WebClientSecret makes it
	// confidential (client_secret_basic or client_secret_post); empty
	// leaves it public. WebRedirectURIs are its redirect URIs, matched
	// exactly; AllowRedirect adds one once the test knows its address.
	WebClientID     string
	WebClientSecret string
	WebRedirectURIs []string
	// AuthRequestLifetime bounds a code-flow sign-in, from the
	// authorization request to the code exchange; default 10 minutes.
	AuthRequestLifetime time.Duration
	// GroupsClaim names the ID token claim that lists the user's groups;
	// default "groups". It is included when the token request asked for
	// GroupsScope (default "groups"), as most providers do.
	GroupsClaim string
	GroupsScope string
	// IDTokenLifetime and AccessTokenLifetime default to one hour.
	IDTokenLifetime     time.Duration
	AccessTokenLifetime time.Duration
	// DeviceCodeLifetime defaults to 10 minutes; PollInterval to RFC
	// 8628's 5 seconds (whole seconds are what the wire carries).
	DeviceCodeLifetime time.Duration
	PollInterval       time.Duration
	// RSA signs with 2048-bit RSA keys (RS256) instead of P-256 (ES256).
	RSA bool
}

func (c *Config) setDefaults() {
	if c.ClientID == "" {
		c.ClientID = "petrel-agent"
	}
	if c.WebClientID == "" {
		c.WebClientID = "petrel-web"
	}
	if c.AuthRequestLifetime == 0 {
		c.AuthRequestLifetime = 10 * time.Minute
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = "groups"
	}
	if c.GroupsScope == "" {
		c.GroupsScope = "groups"
	}
	if c.IDTokenLifetime == 0 {
		c.IDTokenLifetime = time.Hour
	}
	if c.AccessTokenLifetime == 0 {
		c.AccessTokenLifetime = time.Hour
	}
	if c.DeviceCodeLifetime == 0 {
		c.DeviceCodeLifetime = 10 * time.Minute
	}
	if c.PollInterval == 0 {
		c.PollInterval = 5 * time.Second
	}
}

// Provider is a running OpenID provider.
type Provider struct {
	cfg    Config
	srv    *httptest.Server
	ca     *tlstest.CA
	client *http.Client
	st     *storage
	keys   *keyring
}

// Start runs a provider on an HTTPS loopback server until the test ends.
// The issuer is https://127.0.0.1:<port>, certified by a CA of its own
// (CAPool, CAPEM; HTTPClient trusts it).
func Start(t testing.TB, cfg Config) *Provider {
	t.Helper()
	cfg.setDefaults()
	p := &Provider{cfg: cfg, ca: tlstest.NewCA(t, "oidctest CA")}
	var err error
	if p.keys, err = newKeyring(cfg.RSA); err != nil {
		t.Fatal(err)
	}
	if p.st, err = newStorage(&p.cfg, p.keys); err != nil {
		t.Fatal(err)
	}

	// The listener exists before the server starts, so the issuer (which
	// names its port) is known when the OP is built.
	p.srv = httptest.NewUnstartedServer(nil)
	issuer := "https://" + p.srv.Listener.Addr().String()
	opCfg := &op.Config{
		CodeMethodS256:  true,
		AuthMethodPost:  true,
		SupportedScopes: []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, cfg.GroupsScope},
		SupportedClaims: append(slices.Clone(op.DefaultSupportedClaims), cfg.GroupsClaim),
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     cfg.DeviceCodeLifetime,
			PollInterval: cfg.PollInterval,
			UserFormPath: devicePath,
			UserCode:     op.UserCodeBase20,
		},
	}
	if _, err := rand.Read(opCfg.CryptoKey[:]); err != nil {
		t.Fatal(err)
	}
	opCfg.CryptoKeyId = "oidctest"
	provider, err := op.NewProvider(opCfg, p.st, op.StaticIssuer(issuer))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	pages := &devicePages{st: p.st}
	mux.Handle(devicePath, pages)
	mux.Handle(devicePath+"/", pages)
	login := &loginPage{st: p.st, op: provider, issuer: issuer}
	mux.Handle(loginPath, login)
	mux.Handle("/", provider)
	p.srv.Config.Handler = mux
	p.srv.TLS = p.ca.TLSConfig(t, "127.0.0.1")
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)

	p.client = &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ca.Pool(), MinVersion: tls.VersionTLS12}},
		Timeout:   30 * time.Second,
	}
	t.Cleanup(p.client.CloseIdleConnections)
	return p
}

// Close stops the provider early (it stops anyway when the test ends);
// clients then get connection errors.
func (p *Provider) Close() { p.srv.Close() }

// Issuer is the issuer URL (also the base of every endpoint).
func (p *Provider) Issuer() string { return p.srv.URL }

// ClientID is the agent's public device-flow client.
func (p *Provider) ClientID() string { return p.cfg.ClientID }

// GroupsClaim is the name of the groups claim in ID tokens.
func (p *Provider) GroupsClaim() string { return p.cfg.GroupsClaim }

// GroupsScope is the scope that asks for the groups claim.
func (p *Provider) GroupsScope() string { return p.cfg.GroupsScope }

// WebClientID is the code-flow client (the dashboard's).
func (p *Provider) WebClientID() string { return p.cfg.WebClientID }

// WebClientSecret is that client's secret ("" when it is public).
func (p *Provider) WebClientSecret() string { return p.cfg.WebClientSecret }

// AllowRedirect registers a redirect URI of the web client.
func (p *Provider) AllowRedirect(uri string) { p.st.allowRedirect(uri) }

// LoginURL is the path of the code flow's sign-in page (the OP redirects
// the browser there from /authorize).
func (p *Provider) LoginURL() string { return p.srv.URL + loginPath }

// Certificate is the provider's TLS certificate (for a browser told to
// trust exactly this key).
func (p *Provider) Certificate() *x509.Certificate { return p.srv.Certificate() }

// DeviceURL is the page where a user enters a device's user code.
func (p *Provider) DeviceURL() string { return p.srv.URL + devicePath }

// HTTPClient returns a client that trusts the provider's certificate.
func (p *Provider) HTTPClient() *http.Client { return p.client }

// CAPool holds the CA that certifies the provider.
func (p *Provider) CAPool() *x509.CertPool { return p.ca.Pool() }

// CAPEM is that CA's certificate, PEM-encoded (for a --ca-file).
func (p *Provider) CAPEM() []byte { return slices.Clone(p.ca.PEM) }

// SetGroups changes a user's groups at the provider; tokens issued from
// now on carry them.
func (p *Provider) SetGroups(t testing.TB, subject string, groups []string) {
	t.Helper()
	if err := p.st.setGroups(subject, groups); err != nil {
		t.Fatal(err)
	}
}

// RotateKey makes a new signing key current and returns its key ID. The
// previous keys stay in the JWKS (a grace period) until RetireOldKeys.
func (p *Provider) RotateKey(t testing.TB) string {
	t.Helper()
	kid, err := p.keys.rotate()
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// RetireOldKeys removes every key but the current one from the JWKS.
// Retired keys can still sign minted tokens (Token.KeyID).
func (p *Provider) RetireOldKeys() { p.keys.retire() }

// KeyID is the current signing key's ID.
func (p *Provider) KeyID() string { return p.keys.currentID() }

// PublishedKeyIDs lists the key IDs the JWKS serves, current first.
func (p *Provider) PublishedKeyIDs() []string { return p.keys.publishedIDs() }

// SlowDown makes the next n polls of the token endpoint answer
// "slow_down", as a provider does to a client that polls too fast.
func (p *Provider) SlowDown(n int) { p.st.slowDown(n) }

// ExpireDevice makes a pending device authorization expire now: the next
// poll answers "expired_token" and the approval page refuses the code.
func (p *Provider) ExpireDevice(t testing.TB, userCode string) {
	t.Helper()
	if err := p.st.expireDevice(userCode); err != nil {
		t.Fatal(err)
	}
}

// Password is the password a user signs in with on the approval page.
func (p *Provider) Password(t testing.TB, subject string) string {
	t.Helper()
	pw, ok := p.st.password(subject)
	if !ok {
		t.Fatalf("oidctest: no user %q", subject)
	}
	return pw
}
