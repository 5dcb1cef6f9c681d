package management

import (
	"strings"
	"testing"
	"time"

	"petrel/management/internal/mgmttest"
)

// One source gets DefaultLoginSourceBurst logins at once, then
// DefaultLoginSourceRate a second: the next is refused with a retry hint
// before any work (even with a valid setup key), while another source
// still logs in; the limit refills with time.
func TestLoginRateLimitedPerSource(t *testing.T) {
	clk := newClock()
	s, _ := startService(t, sqliteBackend(t).Open(t), func(c *Config) { c.Now = clk.Now })
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	_, plain := mustSetupKey(t, s, acct, SetupKeyInput{Reusable: true})
	flood := from(ctx, "203.0.113.9")
	// Logins without a setup key cost the server little, and are not
	// setup-key failures: only the login rate stops them.
	for i := range DefaultLoginSourceBurst {
		_, err := s.Login(flood, mgmttest.NewKey(t).Public(), loginReq("", "flood"))
		if e := (*Error)(nil); asError(err, &e) && e.Kind == KindExhausted {
			t.Fatalf("login %d of a burst of %d refused: %v", i+1, DefaultLoginSourceBurst, err)
		}
	}
	_, err := s.Login(flood, mgmttest.NewKey(t).Public(), loginReq(plain, "over"))
	wantKind(t, err, KindExhausted, "login over the source's burst")
	var e *Error
	if !asError(err, &e) || e.RetryAfter < time.Second || !strings.Contains(e.Msg, "retry in") {
		t.Fatalf("no retry hint: %v", err)
	}
	if _, err := s.Login(from(ctx, "192.0.2.10"), mgmttest.NewKey(t).Public(), loginReq(plain, "other")); err != nil {
		t.Fatalf("another source: %v", err)
	}
	clk.Advance(time.Duration(float64(time.Second) / DefaultLoginSourceRate))
	if _, err := s.Login(flood, mgmttest.NewKey(t).Public(), loginReq(plain, "refilled")); err != nil {
		t.Fatalf("after one refill interval: %v", err)
	}
	_, err = s.Login(flood, mgmttest.NewKey(t).Public(), loginReq(plain, "over-again"))
	wantKind(t, err, KindExhausted, "second login in one refill interval")
}
