package identity

import (
	"context"
	"sync"
	"testing"
	"time"

	"petrel/client/oidcdevice"
	"petrel/internal/oidctest"
)

// clock is an injected clock that starts at the wall clock (the provider
// stamps its tokens with the wall clock) and moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var testUsers = []oidctest.User{
	{Subject: "u1", Email: "alice@example.com", EmailVerified: true, Name: "Alice", Groups: []string{"eng", "ops"}},
	{Subject: "u2", Email: "bob@example.com", EmailVerified: false, Name: "Bob"},
	{Subject: "u3", Email: "mallory@evil.example", EmailVerified: true},
}

// setup starts a provider with testUsers and a verifier for it; edit
// changes the verifier's config first.
func setup(t *testing.T, pc oidctest.Config, edit func(*Config)) (*oidctest.Provider, *Verifier, *clock) {
	t.Helper()
	pc.Users = testUsers
	p := oidctest.Start(t, pc)
	c := newClock()
	cfg := Config{Issuer: p.Issuer(), ClientID: p.ClientID(), GroupsClaim: p.GroupsClaim(), HTTPClient: p.HTTPClient(), Now: c.now}
	if edit != nil {
		edit(&cfg)
	}
	v, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, v, c
}

// deviceLogin signs subject in the way the agent will: the device flow
// with the agent's client, approved on the provider's pages over HTTP. It
// returns the ID token.
func deviceLogin(t *testing.T, p *oidctest.Provider, subject string, scopes ...string) string {
	t.Helper()
	if scopes == nil {
		scopes = []string{"profile", "email", p.GroupsScope()}
	}
	ctx := context.Background()
	a, err := oidcdevice.Start(ctx, oidcdevice.Config{Issuer: p.Issuer(), ClientID: p.ClientID(), Scopes: scopes,
		HTTPClient: p.HTTPClient(), Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	p.ApproveDevice(t, a.UserCode, subject)
	tok, err := a.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tok.IDToken
}
