package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"petrel/management"
	"petrel/management/identity"
	"petrel/management/ui"
)

// OIDC configures sign-in through an OpenID provider (docs/identity.md).
// A zero Issuer turns it off: setup keys and admin tokens only.
type OIDC struct {
	Issuer       string // exactly as the provider's tokens carry it
	ClientID     string // the agents' public client (device grant)
	ClientSecret string // confidential web client (dashboard); optional
	// WebClientID is the dashboard's client (authorization-code flow with
	// PKCE, redirect URI <public URL>/ui/login/callback); "" = ClientID.
	WebClientID string
	// Name is the provider's name on the dashboard's sign-in button; ""
	// = the issuer's host.
	Name         string
	Scopes       []string // asked for by agents; default openid profile email
	GroupsClaim  string   // claim with the user's groups; "" = no group sync
	EmailDomains []string // only verified emails in these domains sign in
	OwnerEmails  []string // users created with the owner role
	Account      string   // account users join; "" = the first account
	// HTTPClient talks to the provider (default: 30 s timeout).
	HTTPClient *http.Client
}

// Enabled reports whether an issuer is configured.
func (o OIDC) Enabled() bool { return o.Issuer != "" }

// DefaultOIDCScopes are asked for when --oidc-scopes is not given.
var DefaultOIDCScopes = []string{"openid", "profile", "email"}

// validate reports every problem with the OIDC flags.
func (o OIDC) validate() []error {
	if !o.Enabled() {
		if o.ClientID != "" || o.ClientSecret != "" || o.GroupsClaim != "" || len(o.EmailDomains) > 0 || len(o.OwnerEmails) > 0 || o.Account != "" ||
			o.WebClientID != "" || o.Name != "" {
			return []error{errors.New("--oidc-*: set --oidc-issuer too (the other OpenID settings need a provider)")}
		}
		return nil
	}
	var errs []error
	u, err := url.Parse(o.Issuer)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		errs = append(errs, fmt.Errorf("--oidc-issuer %q: want https://HOST[/PATH]", o.Issuer))
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		errs = append(errs, fmt.Errorf("--oidc-issuer %q: an issuer must use https (http only on loopback, for tests)", o.Issuer))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("--oidc-issuer %q: no query or fragment allowed", o.Issuer))
	}
	if strings.TrimSpace(o.ClientID) == "" {
		errs = append(errs, errors.New("--oidc-client-id is required with --oidc-issuer"))
	}
	for _, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\"\\") {
			errs = append(errs, fmt.Errorf("--oidc-scopes: %q is not a scope", s))
		}
	}
	for _, d := range o.EmailDomains {
		if d = strings.TrimPrefix(strings.TrimSpace(d), "@"); d == "" || strings.ContainsAny(d, "@ \t") {
			errs = append(errs, fmt.Errorf("--oidc-email-domains: %q is not a domain", d))
		}
	}
	for _, e := range o.OwnerEmails {
		if at := strings.IndexByte(e, '@'); at <= 0 || at == len(e)-1 || strings.ContainsAny(e, " \t") {
			errs = append(errs, fmt.Errorf("--oidc-owner-emails: %q is not an email address", e))
		}
	}
	return errs
}

func loopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// identityConfig builds the management side of o: a verifier that
// discovers the provider on first use (so a provider that is down when
// the server starts only delays sign-ins; setup-key peers are unaffected).
func (o OIDC) identityConfig() *management.IdentityConfig {
	if !o.Enabled() {
		return nil
	}
	scopes := o.Scopes
	if len(scopes) == 0 {
		scopes = DefaultOIDCScopes
	}
	return &management.IdentityConfig{
		Verifier: &lazyVerifier{cfg: identity.Config{Issuer: o.Issuer, ClientID: o.ClientID, GroupsClaim: o.GroupsClaim,
			AllowedEmailDomains: o.EmailDomains, HTTPClient: o.HTTPClient}},
		Issuer: o.Issuer, ClientID: o.ClientID, Scopes: scopes,
		AccountID: o.Account, OwnerEmails: o.OwnerEmails,
	}
}

// dashboardConfig is the dashboard's sign-in with the provider (the
// authorization-code flow with PKCE, management/ui/oidc.go), nil when no
// provider is configured. The ID tokens it receives are checked by a
// verifier of their own whose audience is the web client only (agents'
// tokens are not accepted there, nor the dashboard's by agents' logins);
// groups are not read (they follow agent sign-ins).
func (o OIDC) dashboardConfig(publicURL string) *ui.OIDC {
	if !o.Enabled() {
		return nil
	}
	web := o.WebClientID
	if web == "" {
		web = o.ClientID
	}
	return &ui.OIDC{
		Name: o.Name, Issuer: o.Issuer, ClientID: web, ClientSecret: o.ClientSecret,
		RedirectURL: strings.TrimSuffix(publicURL, "/") + "/ui/login/callback",
		Scopes:      o.Scopes,
		Verifier: &lazyVerifier{cfg: identity.Config{Issuer: o.Issuer, ClientID: web,
			AllowedEmailDomains: o.EmailDomains, HTTPClient: o.HTTPClient}},
		HTTPClient: o.HTTPClient,
	}
}

// lazyVerifier discovers the provider when first needed and again after a
// failed discovery (at most every retryDiscovery).
type lazyVerifier struct {
	cfg identity.Config

	mu      sync.Mutex
	v       *identity.Verifier
	lastTry time.Time
	lastErr error
}

const retryDiscovery = 10 * time.Second

func (l *lazyVerifier) get(ctx context.Context) (*identity.Verifier, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.v != nil {
		return l.v, nil
	}
	if l.lastErr != nil && time.Since(l.lastTry) < retryDiscovery {
		return nil, l.lastErr
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := identity.New(ctx, l.cfg)
	l.lastTry = time.Now()
	if err != nil {
		l.lastErr = fmt.Errorf("%w: %v", identity.ErrUnavailable, err)
		return nil, l.lastErr
	}
	l.v, l.lastErr = v, nil
	return v, nil
}

// Verify implements management.TokenVerifier.
func (l *lazyVerifier) Verify(ctx context.Context, raw string, opts ...identity.VerifyOption) (*identity.Identity, error) {
	v, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return v.Verify(ctx, raw, opts...)
}

// OIDCIssuer returns the configured OpenID issuer ("" when off).
func (s *Server) OIDCIssuer() string { return s.cfg.OIDC.Issuer }
