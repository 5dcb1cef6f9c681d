package oidcdevice

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"petrel/internal/oidctest"
)

// fakeTime is an injected clock; sleeping advances it and records the
// interval, and onSleep (if set) runs on each sleep with its 1-based count.
type fakeTime struct {
	mu      sync.Mutex
	now     time.Time
	sleeps  []time.Duration
	onSleep func(n int) error
}

func (f *fakeTime) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeTime) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.sleeps = append(f.sleeps, d)
	n := len(f.sleeps)
	f.mu.Unlock()
	if n > 50 {
		return errors.New("test: too many polls")
	}
	if f.onSleep != nil {
		if err := f.onSleep(n); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (f *fakeTime) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sleeps)
}

func setup(t *testing.T, pc oidctest.Config) (*oidctest.Provider, *fakeTime, Config) {
	pc.Users = []oidctest.User{{Subject: "u1", Email: "alice@example.com", Groups: []string{"eng"}}}
	p := oidctest.Start(t, pc)
	ft := &fakeTime{now: time.Now()}
	return p, ft, Config{Issuer: p.Issuer(), ClientID: p.ClientID(), Scopes: []string{"email", "groups"},
		HTTPClient: p.HTTPClient(), Now: ft.Now, Sleep: ft.Sleep}
}

func secs(s ...int) []time.Duration {
	var d []time.Duration
	for _, n := range s {
		d = append(d, time.Duration(n)*time.Second)
	}
	return d
}

func TestApprovedAfterPending(t *testing.T) {
	p, ft, cfg := setup(t, oidctest.Config{})
	ctx := context.Background()
	a, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.VerificationURI != p.DeviceURL() || !strings.Contains(a.VerificationURIComplete, "user_code=") || a.Interval != 5*time.Second {
		t.Fatalf("authorization %+v", a)
	}
	ins := a.Instructions()
	if !strings.Contains(ins, a.VerificationURI) || !strings.Contains(ins, a.UserCode) {
		t.Fatalf("instructions %q", ins)
	}
	// The user approves while the agent waits: the first poll is pending,
	// the second gets the tokens.
	ft.onSleep = func(n int) error {
		if n == 2 {
			p.ApproveDevice(t, a.UserCode, "u1")
		}
		return nil
	}
	tok, err := a.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(tok.IDToken, ".") != 2 || tok.AccessToken == "" || tok.Expiry.IsZero() {
		t.Fatalf("tokens: id %d bytes, access %d bytes, expiry %v", len(tok.IDToken), len(tok.AccessToken), tok.Expiry)
	}
	if got := ft.Sleeps(); !slices.Equal(got, secs(5, 5)) {
		t.Fatalf("slept %v", got)
	}
}

func TestSlowDownAddsFiveSeconds(t *testing.T) {
	p, ft, cfg := setup(t, oidctest.Config{PollInterval: 2 * time.Second})
	a, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.SlowDown(2)
	ft.onSleep = func(n int) error {
		if n == 4 {
			p.ApproveDevice(t, a.UserCode, "u1")
		}
		return nil
	}
	if _, err := a.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	// slow_down, slow_down, pending, tokens: the interval grows by 5 s per
	// slow_down and stays grown.
	if got := ft.Sleeps(); !slices.Equal(got, secs(2, 7, 12, 12)) {
		t.Fatalf("slept %v", got)
	}
}

func TestOutcomes(t *testing.T) {
	cases := []struct {
		name string
		act  func(t *testing.T, p *oidctest.Provider, a *Authorization)
		want error
	}{
		{"access_denied", func(t *testing.T, p *oidctest.Provider, a *Authorization) { p.DenyDevice(t, a.UserCode, "u1") }, ErrDenied},
		{"expired_token", func(t *testing.T, p *oidctest.Provider, a *Authorization) { p.ExpireDevice(t, a.UserCode) }, ErrExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, ft, cfg := setup(t, oidctest.Config{})
			a, err := Start(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			c.act(t, p, a)
			_, err = a.Wait(context.Background())
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if got := ft.Sleeps(); len(got) != 1 {
				t.Fatalf("polled %d times", len(got))
			}
		})
	}
}

func TestCodeLifetimeEndsWaitLocally(t *testing.T) {
	// The provider would keep answering "pending" (its own clock has not
	// moved); the agent stops when the code's lifetime has passed on its
	// clock.
	_, ft, cfg := setup(t, oidctest.Config{DeviceCodeLifetime: 30 * time.Second})
	a, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Wait(context.Background()); !errors.Is(err, ErrExpired) {
		t.Fatalf("got %v", err)
	}
	if got := len(ft.Sleeps()); got != 7 { // 6 polls at 5..30 s, then 35 s > 30 s
		t.Fatalf("slept %d times", got)
	}
}

func TestProviderGoneBacksOff(t *testing.T) {
	p, ft, cfg := setup(t, oidctest.Config{})
	a, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	_, err = a.Wait(context.Background())
	if err == nil || errors.Is(err, ErrExpired) {
		t.Fatalf("got %v", err)
	}
	if got := ft.Sleeps(); !slices.Equal(got, secs(5, 10, 20, 40, 60)) {
		t.Fatalf("slept %v", got)
	}
}

func TestCancel(t *testing.T) {
	_, ft, cfg := setup(t, oidctest.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ft.onSleep = func(n int) error {
		if n == 3 {
			cancel()
		}
		return nil
	}
	if _, err := a.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestLoginPrintsInstructions(t *testing.T) {
	p, ft, cfg := setup(t, oidctest.Config{})
	var out bytes.Buffer
	ft.onSleep = func(int) error {
		// The user reads the code the agent printed and approves it.
		line := out.String()
		i := strings.Index(line, "enter the code ")
		if i < 0 {
			t.Errorf("no code in %q", line)
			return errors.New("no code")
		}
		p.ApproveDevice(t, strings.Fields(line[i+len("enter the code "):])[0], "u1")
		return nil
	}
	tok, err := Login(context.Background(), cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if tok.IDToken == "" || !strings.Contains(out.String(), p.DeviceURL()) {
		t.Fatalf("output %q", out.String())
	}
}

func TestStartErrors(t *testing.T) {
	p, _, cfg := setup(t, oidctest.Config{})
	bad := cfg
	bad.ClientID = "not-registered"
	if _, err := Start(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("unknown client: %v", err)
	}
	bad = cfg
	bad.Issuer = p.Issuer() + "/other"
	if _, err := Start(context.Background(), bad); err == nil {
		t.Fatal("wrong issuer accepted")
	}
	bad = cfg
	bad.HTTPClient = nil // does not trust the provider's CA
	if _, err := Start(context.Background(), bad); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
}

func TestNoIntervalMeansFiveSeconds(t *testing.T) {
	// A sub-second poll interval is sent as 0, i.e. left out of the answer.
	_, _, cfg := setup(t, oidctest.Config{PollInterval: time.Millisecond})
	a, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.Interval != 5*time.Second {
		t.Fatalf("interval %v", a.Interval)
	}
}
