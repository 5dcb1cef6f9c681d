package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"petrel/client/oidcdevice"
	"petrel/internal/oidctest"
	"petrel/internal/qrterm"
)

// loginClock is an injected clock for deviceLogin: sleeping advances it,
// and onSleep runs on each sleep with its 1-based count.
type loginClock struct {
	mu      sync.Mutex
	now     time.Time
	n       int
	onSleep func(n int) error
}

func (c *loginClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *loginClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.n++
	n := c.n
	c.mu.Unlock()
	if n > 200 {
		return errors.New("test: too many sleeps")
	}
	if err := c.onSleep(n); err != nil {
		return err
	}
	return ctx.Err()
}

func deviceLoginSetup(t *testing.T) (*oidctest.Provider, *loginClock, oidcdevice.Config) {
	p := oidctest.Start(t, oidctest.Config{Users: []oidctest.User{{Subject: "u1", Email: "alice@example.com"}}})
	c := &loginClock{now: time.Now(), onSleep: func(int) error { return nil }}
	return p, c, oidcdevice.Config{Issuer: p.Issuer(), ClientID: p.ClientID(),
		HTTPClient: p.HTTPClient(), Now: c.Now, Sleep: c.Sleep}
}

var codeRE = regexp.MustCompile(`To sign in, open (\S+) and enter the code (\S+)\n`)

// approveFromOutput approves, as the user would, the code deviceLogin
// printed, on the provider's pages over HTTP.
func approveFromOutput(t *testing.T, p *oidctest.Provider, out *bytes.Buffer) error {
	m := codeRE.FindStringSubmatch(out.String())
	if m == nil || m[1] != p.DeviceURL() {
		t.Errorf("no instructions in %q", out.String())
		return errors.New("no instructions")
	}
	p.ApproveDevice(t, m[2], "u1")
	return nil
}

func subjectOf(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("ID token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.Sub
}

func TestDeviceLoginNotATerminal(t *testing.T) {
	p, clock, cfg := deviceLoginSetup(t)
	var out bytes.Buffer
	clock.onSleep = func(n int) error {
		if n == 2 { // one poll answered "pending" first
			return approveFromOutput(t, p, &out)
		}
		return nil
	}
	tok, err := deviceLogin(context.Background(), &out, false, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sub := subjectOf(t, tok); sub != "u1" {
		t.Fatalf("token for %q", sub)
	}
	got := out.String()
	if strings.ContainsAny(got, "\x1b\r▀▄█") || strings.Contains(got, tok) {
		t.Fatalf("terminal codes, QR code or the token in %q", got)
	}
	if n := strings.Count(got, "Waiting for the sign-in to be approved (the code expires in 10m0s)...\n"); n != 1 {
		t.Fatalf("%d waiting lines in %q", n, got)
	}
}

func TestDeviceLoginTerminal(t *testing.T) {
	p, clock, cfg := deviceLoginSetup(t)
	var out bytes.Buffer
	clock.onSleep = func(n int) error {
		if n == 7 { // sleeps are cut into seconds: the second poll
			return approveFromOutput(t, p, &out)
		}
		return nil
	}
	tok, err := deviceLogin(context.Background(), &out, true, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if subjectOf(t, tok) != "u1" {
		t.Fatal("wrong subject")
	}
	got := out.String()
	// The QR code encodes the link with the code filled in.
	m := regexp.MustCompile(`\(or open (\S+)\)\n`).FindStringSubmatch(got)
	if m == nil || !strings.Contains(m[1], "user_code=") {
		t.Fatalf("no complete verification URI in %q", got)
	}
	var qr bytes.Buffer
	if err := qrterm.Render(&qr, m[1]); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, m[0]+qr.String()) {
		t.Fatal("no QR code of the verification URI after the instructions")
	}
	// The waiting line counts down in place, one draw a second, and is
	// ended with a newline.
	draws := regexp.MustCompile(`\r\x1b\[K[^\r\n]*`).FindAllString(got, -1)
	if len(draws) != 11 || !strings.HasSuffix(got, "\n") {
		t.Fatalf("%d draws in %q", len(draws), got)
	}
	for i, d := range draws {
		want := "(the code expires in " + (10*time.Minute - time.Duration(i)*time.Second).String() + ")..."
		if !strings.HasSuffix(d, want) {
			t.Fatalf("draw %d is %q, want it to end in %q", i, d, want)
		}
	}
}

func TestDeviceLoginCancelled(t *testing.T) {
	for _, tty := range []bool{false, true} {
		_, clock, cfg := deviceLoginSetup(t)
		ctx, cancel := context.WithCancel(context.Background())
		clock.onSleep = func(n int) error {
			if n == 3 {
				cancel() // Ctrl-C
			}
			return nil
		}
		var out bytes.Buffer
		_, err := deviceLogin(ctx, &out, tty, cfg)
		if !errors.Is(err, errSignInCancelled) || err.Error() != "sign-in cancelled" {
			t.Fatalf("tty %v: got %v", tty, err)
		}
		if !strings.HasSuffix(out.String(), "\n") {
			t.Fatalf("tty %v: the waiting line is left open: %q", tty, out.String())
		}
	}
	// Cancelled before the provider answers.
	_, _, cfg := deviceLoginSetup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := deviceLogin(ctx, new(bytes.Buffer), true, cfg); !errors.Is(err, errSignInCancelled) {
		t.Fatalf("got %v", err)
	}
}

func TestDeviceLoginDenied(t *testing.T) {
	p, clock, cfg := deviceLoginSetup(t)
	var out bytes.Buffer
	clock.onSleep = func(n int) error {
		if n == 1 {
			m := codeRE.FindStringSubmatch(out.String())
			p.DenyDevice(t, m[2], "u1")
		}
		return nil
	}
	if _, err := deviceLogin(context.Background(), &out, false, cfg); !errors.Is(err, oidcdevice.ErrDenied) {
		t.Fatalf("got %v", err)
	}
}

// TestAgentHasNoOpenIDLibrary: the agent binary carries neither the
// OpenID library the tests use nor the telemetry it brings.
func TestAgentHasNoOpenIDLibrary(t *testing.T) {
	goBin, err := exec.LookPath("go") // go test puts GOROOT/bin first in PATH
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "petrel/cmd/petrel").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !strings.Contains(string(out), "petrel/client/oidcdevice\n") {
		t.Fatalf("the agent does not import petrel/client/oidcdevice:\n%s", out)
	}
	for _, d := range deps {
		if strings.Contains(d, "zitadel") || strings.Contains(d, "opentelemetry") {
			t.Errorf("the agent depends on %s", d)
		}
	}
}
