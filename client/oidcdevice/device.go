// Package oidcdevice signs a user in on a headless machine with the OAuth
// 2.0 device authorization grant (RFC 8628) at an OpenID provider: it asks
// the provider for a device code, shows the user where to go and which
// code to enter, and polls the token endpoint until the user has approved
// or denied, or the code has expired. The result is the provider's ID
// token, which the agent sends to the management server as
// LoginRequest.jwt (the server verifies it; this package does not).
//
// The wire calls are github.com/zitadel/oidc/v3/pkg/client's; the polling
// loop is here so its clock and sleep can be injected.
//
// The agent imports it. Start and Wait run on the caller's goroutine; an
// *Authorization is used by one goroutine at a time.
package oidcdevice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"petrel/internal/printable"
)

// Errors Wait returns for the outcomes a caller reports differently.
var (
	ErrDenied    = errors.New("the sign-in was denied at the identity provider")
	ErrExpired   = errors.New("the code expired before the sign-in was approved; start again")
	ErrNoIDToken = errors.New("the identity provider returned no ID token (is the openid scope allowed?)")
)

const (
	defaultInterval = 5 * time.Second // RFC 8628 section 3.2
	slowDownStep    = 5 * time.Second // RFC 8628 section 3.5
	maxBackoff      = time.Minute
	maxFailures     = 5 // consecutive polls without an OAuth answer
)

// Config names the provider and the agent's client there.
type Config struct {
	Issuer   string // discovered at Issuer/.well-known/openid-configuration
	ClientID string // a public client with the device grant
	// Scopes requested; "openid" is always added. Default: openid
	// profile email. Add the provider's groups scope when the server
	// syncs groups.
	Scopes     []string
	HTTPClient *http.Client // default http.DefaultClient
	// Now and Sleep default to the wall clock; tests inject their own.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Tokens is what the provider issued once the user approved.
type Tokens struct {
	IDToken     string
	AccessToken string
	Expiry      time.Time // of the access token; zero if not given
}

// Authorization is a started device authorization: show UserCode and
// VerificationURI to the user, then Wait.
type Authorization struct {
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string    // the URI with the code filled in; may be empty
	Expires                 time.Time // zero if the provider gave no lifetime
	Interval                time.Duration

	cfg        Config
	deviceCode string
	endpoints  endpoints
}

// endpoints implements the zitadel client's caller interfaces.
type endpoints struct {
	device, token string
	hc            *http.Client
}

func (e endpoints) GetDeviceAuthorizationEndpoint() string { return e.device }
func (e endpoints) TokenEndpoint() string                  { return e.token }
func (e endpoints) HttpClient() *http.Client               { return e.hc }

func (c *Config) setDefaults() {
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{oidc.ScopeProfile, oidc.ScopeEmail}
	}
	if !slices.Contains(c.Scopes, oidc.ScopeOpenID) {
		c.Scopes = append([]string{oidc.ScopeOpenID}, c.Scopes...)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start discovers the provider and asks it for a device code.
func Start(ctx context.Context, cfg Config) (*Authorization, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("device login: issuer and client ID are required")
	}
	cfg.Scopes = slices.Clone(cfg.Scopes)
	cfg.setDefaults()
	disc, err := client.Discover(ctx, cfg.Issuer, cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", cfg.Issuer, err)
	}
	if disc.DeviceAuthorizationEndpoint == "" || disc.TokenEndpoint == "" {
		return nil, fmt.Errorf("discover %s: the provider offers no device authorization endpoint", cfg.Issuer)
	}
	ep := endpoints{device: disc.DeviceAuthorizationEndpoint, token: disc.TokenEndpoint, hc: cfg.HTTPClient}
	resp, err := client.CallDeviceAuthorizationEndpoint(ctx, &oidc.ClientCredentialsRequest{
		Scope: cfg.Scopes, ClientID: cfg.ClientID,
	}, ep, nil)
	if err != nil {
		return nil, fmt.Errorf("start device authorization: %w", err)
	}
	if resp.DeviceCode == "" || resp.UserCode == "" || resp.VerificationURI == "" {
		return nil, errors.New("start device authorization: the answer lacks the device code, user code or verification URI")
	}
	a := &Authorization{
		UserCode:                resp.UserCode,
		VerificationURI:         resp.VerificationURI,
		VerificationURIComplete: resp.VerificationURIComplete,
		Interval:                time.Duration(resp.Interval) * time.Second,
		cfg:                     cfg,
		deviceCode:              resp.DeviceCode,
		endpoints:               ep,
	}
	if a.Interval <= 0 {
		a.Interval = defaultInterval
	}
	if resp.ExpiresIn > 0 {
		a.Expires = cfg.Now().Add(time.Duration(resp.ExpiresIn) * time.Second)
	}
	return a, nil
}

// Instructions is the text to show the user; provider-supplied strings
// are escaped so they cannot drive the terminal.
func (a *Authorization) Instructions() string {
	s := fmt.Sprintf("To sign in, open %s and enter the code %s\n",
		printable.Escape(a.VerificationURI), printable.Escape(a.UserCode))
	if a.VerificationURIComplete != "" {
		s += fmt.Sprintf("(or open %s)\n", printable.Escape(a.VerificationURIComplete))
	}
	return s
}

// Wait polls the token endpoint (RFC 8628 section 3.4) every Interval:
// "authorization_pending" polls again, "slow_down" adds 5 s to the
// interval for good, "access_denied" is ErrDenied, "expired_token" (or
// the code's lifetime passing) is ErrExpired. A poll that gets no OAuth
// answer (network or server trouble) doubles the interval, up to a minute;
// five in a row end the wait with the last error.
func (a *Authorization) Wait(ctx context.Context) (*Tokens, error) {
	req := &client.DeviceAccessTokenRequest{
		ClientCredentialsRequest: &oidc.ClientCredentialsRequest{ClientID: a.cfg.ClientID},
		DeviceAccessTokenRequest: oidc.DeviceAccessTokenRequest{GrantType: oidc.GrantTypeDeviceCode, DeviceCode: a.deviceCode},
	}
	interval, failures := a.Interval, 0
	for {
		if err := a.cfg.Sleep(ctx, interval); err != nil {
			return nil, err
		}
		if !a.Expires.IsZero() && a.cfg.Now().After(a.Expires) {
			return nil, ErrExpired
		}
		resp, err := client.CallDeviceAccessTokenEndpointWithAuthFn(ctx, req, a.endpoints, nil)
		if err == nil {
			if resp.IDToken == "" {
				return nil, ErrNoIDToken
			}
			t := &Tokens{IDToken: resp.IDToken, AccessToken: resp.AccessToken}
			if resp.ExpiresIn > 0 {
				t.Expiry = a.cfg.Now().Add(time.Duration(resp.ExpiresIn) * time.Second)
			}
			return t, nil
		}
		var oe *oidc.Error
		if !errors.As(err, &oe) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if failures++; failures >= maxFailures {
				return nil, fmt.Errorf("poll token endpoint: %w", err)
			}
			interval = min(2*interval, max(maxBackoff, interval))
			continue
		}
		failures = 0
		switch oe.ErrorType {
		case oidc.AuthorizationPending:
		case oidc.SlowDown:
			interval += slowDownStep
		case oidc.AccessDenied:
			return nil, describe(ErrDenied, oe)
		case oidc.ExpiredToken:
			return nil, describe(ErrExpired, oe)
		default:
			return nil, describe(fmt.Errorf("token endpoint answered %q", oe.ErrorType), oe)
		}
	}
}

func describe(err error, oe *oidc.Error) error {
	if oe.Description == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, printable.Escape(oe.Description))
}

// Login starts a device authorization, writes the instructions to w and
// waits for the outcome.
func Login(ctx context.Context, cfg Config, w io.Writer) (*Tokens, error) {
	a, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(w, a.Instructions()); err != nil {
		return nil, err
	}
	return a.Wait(ctx)
}
