// Package oidcdevice signs a user in on a headless machine with the OAuth
// 2.0 device authorization grant (RFC 8628) at an OpenID provider: it asks
// the provider for a device code, shows the user where to go and which
// code to enter, and polls the token endpoint until the user has approved
// or denied, or the code has expired. The result is the provider's ID
// token, which the agent sends to the management server as
// LoginRequest.jwt (the server verifies it; this package does not).
//
// It is written on net/http and encoding/json only, so the agent binary
// carries no OpenID library: device.go has the API (Start, Instructions,
// Login), poll.go the polling loop with its injected clock and sleep,
// wire.go the HTTP requests and the checks on what comes back (bounded
// reads, https for every non-loopback URL, escaped provider strings in
// errors). Tokens are never logged and never put in an error.
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
	"net/url"
	"slices"
	"strings"
	"time"

	"petrel/internal/printable"
)

// Errors Wait returns for the outcomes a caller reports differently.
var (
	ErrDenied    = errors.New("the sign-in was denied at the identity provider")
	ErrExpired   = errors.New("the code expired before the sign-in was approved; start again")
	ErrNoIDToken = errors.New("the identity provider returned no ID token (is the openid scope allowed?)")
)

const (
	defaultInterval       = 5 * time.Second // RFC 8628 section 3.2
	slowDownStep          = 5 * time.Second // RFC 8628 section 3.5
	maxBackoff            = time.Minute
	maxFailures           = 5 // consecutive polls without an OAuth answer
	defaultRequestTimeout = 30 * time.Second

	grantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
	discoveryPath   = "/.well-known/openid-configuration"

	// Bounds on what the provider tells the user to open and type; a QR
	// code of the longest URI still fits a terminal.
	maxUserCode = 128
	maxURI      = 2048
)

// Config names the provider and the agent's client there.
type Config struct {
	// Issuer is discovered at Issuer/.well-known/openid-configuration and
	// must be https, or http on a loopback address (tests).
	Issuer   string
	ClientID string // a public client with the device grant
	// Scopes requested; "openid" is always added. Default: openid
	// profile email. Add the provider's groups scope when the server
	// syncs groups.
	Scopes     []string
	HTTPClient *http.Client // default http.DefaultClient
	// RequestTimeout bounds each HTTP request; default 30 s.
	RequestTimeout time.Duration
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

	cfg           Config
	wire          *wire
	deviceCode    string
	tokenEndpoint string
}

func (c *Config) setDefaults() {
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"profile", "email"}
	}
	if !slices.Contains(c.Scopes, "openid") {
		c.Scopes = append([]string{"openid"}, c.Scopes...)
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

// discovery is the part of the provider's metadata the flow needs.
type discovery struct {
	Issuer                      string `json:"issuer"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	TokenEndpoint               string `json:"token_endpoint"`
}

// deviceAnswer is the device authorization response (RFC 8628 section
// 3.2). VerificationURL is an earlier draft's name some providers still
// send.
type deviceAnswer struct {
	DeviceCode              string  `json:"device_code"`
	UserCode                string  `json:"user_code"`
	VerificationURI         string  `json:"verification_uri"`
	VerificationURL         string  `json:"verification_url"`
	VerificationURIComplete string  `json:"verification_uri_complete"`
	ExpiresIn               seconds `json:"expires_in"`
	Interval                seconds `json:"interval"`
}

// Start discovers the provider and asks it for a device code.
func Start(ctx context.Context, cfg Config) (*Authorization, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("device login: issuer and client ID are required")
	}
	if err := checkURL("issuer", cfg.Issuer); err != nil {
		return nil, fmt.Errorf("device login: %w", err)
	}
	cfg.Scopes = slices.Clone(cfg.Scopes)
	cfg.setDefaults()
	w := newWire(cfg.HTTPClient, cfg.RequestTimeout)
	disc, err := discover(ctx, w, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", clean(cfg.Issuer), err)
	}

	ep := disc.DeviceAuthorizationEndpoint
	status, body, err := w.send(ctx, ep, url.Values{"client_id": {cfg.ClientID}, "scope": {strings.Join(cfg.Scopes, " ")}})
	var ans deviceAnswer
	if err == nil {
		err = decode(status, body, &ans)
	}
	if err == nil {
		err = ans.check()
	}
	if err != nil {
		return nil, fmt.Errorf("start device authorization at %s: %w", clean(ep), err)
	}
	a := &Authorization{
		UserCode:                ans.UserCode,
		VerificationURI:         ans.VerificationURI,
		VerificationURIComplete: ans.VerificationURIComplete,
		Interval:                ans.Interval.duration(),
		cfg:                     cfg,
		wire:                    w,
		deviceCode:              ans.DeviceCode,
		tokenEndpoint:           disc.TokenEndpoint,
	}
	if a.Interval <= 0 {
		a.Interval = defaultInterval
	}
	if ans.ExpiresIn > 0 {
		a.Expires = cfg.Now().Add(ans.ExpiresIn.duration())
	}
	return a, nil
}

// discover fetches the provider's metadata and checks it names the issuer
// asked for and secure endpoints for the device flow.
func discover(ctx context.Context, w *wire, issuer string) (*discovery, error) {
	u := strings.TrimSuffix(issuer, "/") + discoveryPath
	status, body, err := w.send(ctx, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", clean(u), err)
	}
	var d discovery
	if err := decode(status, body, &d); err != nil {
		return nil, fmt.Errorf("GET %s: %w", clean(u), err)
	}
	if d.Issuer != issuer {
		return nil, fmt.Errorf("the provider calls itself %q, not the configured issuer", clean(d.Issuer))
	}
	if d.DeviceAuthorizationEndpoint == "" || d.TokenEndpoint == "" {
		return nil, errors.New("the provider offers no device authorization or token endpoint")
	}
	if err := checkURL("device authorization endpoint", d.DeviceAuthorizationEndpoint); err != nil {
		return nil, err
	}
	if err := checkURL("token endpoint", d.TokenEndpoint); err != nil {
		return nil, err
	}
	return &d, nil
}

// check validates a device authorization response and fills
// VerificationURI from the older name.
func (d *deviceAnswer) check() error {
	if d.VerificationURI == "" {
		d.VerificationURI = d.VerificationURL
	}
	if d.DeviceCode == "" || d.UserCode == "" || d.VerificationURI == "" {
		return errors.New("the answer lacks the device code, user code or verification URI")
	}
	if len(d.UserCode) > maxUserCode || len(d.VerificationURI) > maxURI || len(d.VerificationURIComplete) > maxURI {
		return errors.New("the user code or verification URI is too long")
	}
	if err := checkURL("verification URI", d.VerificationURI); err != nil {
		return err
	}
	if d.VerificationURIComplete != "" {
		return checkURL("verification URI", d.VerificationURIComplete)
	}
	return nil
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
