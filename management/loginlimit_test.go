package management

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/peer"

	"petrel/management/internal/mgmttest"
	"petrel/proto/managementpb"
)

// from returns ctx as a gRPC call from ip.
func from(ctx context.Context, ip string) context.Context {
	return peer.NewContext(ctx, &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}})
}

// A source guessing setup keys is refused after DefaultLoginFailBurst
// failures, before its next key is even looked up (the right key waits
// too); another source is unaffected; the limit refills with time.
func TestSetupKeyGuessingLimitedPerSource(t *testing.T) {
	clk := newClock()
	s, _ := startService(t, sqliteBackend(t).Open(t), func(c *Config) { c.Now = clk.Now })
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	_, plain := mustSetupKey(t, s, acct, SetupKeyInput{Reusable: true})
	attacker := from(ctx, "198.51.100.7")
	req := func(key string) *managementpb.LoginRequest { return loginReq(key, "x") }
	for range DefaultLoginFailBurst {
		_, err := s.Login(attacker, mgmttest.NewKey(t).Public(), req("wrong-key"))
		wantKind(t, err, KindUnauthenticated, "wrong key")
	}
	_, err := s.Login(attacker, mgmttest.NewKey(t).Public(), req("wrong-key"))
	wantKind(t, err, KindExhausted, "guess over the limit")
	var e *Error
	if !asError(err, &e) || e.RetryAfter < time.Second {
		t.Fatalf("no retry hint: %v", err)
	}
	_, err = s.Login(attacker, mgmttest.NewKey(t).Public(), req(plain))
	wantKind(t, err, KindExhausted, "right key from the limited source")
	if _, err := s.Login(from(ctx, "192.0.2.10"), mgmttest.NewKey(t).Public(), req(plain)); err != nil {
		t.Fatalf("another source: %v", err)
	}
	clk.Advance(time.Duration(float64(time.Second) / DefaultLoginFailRate))
	if _, err := s.Login(attacker, mgmttest.NewKey(t).Public(), req(plain)); err != nil {
		t.Fatalf("after the refill: %v", err)
	}
}

// Re-authentications of one key are limited; in-process callers (no
// source address) are not.
func TestReauthenticationLimitedPerPeer(t *testing.T) {
	clk := newClock()
	s, _ := startService(t, sqliteBackend(t).Open(t), func(c *Config) { c.Now = clk.Now })
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	_, plain := mustSetupKey(t, s, acct, SetupKeyInput{Reusable: true})
	k := mgmttest.NewKey(t)
	src := from(ctx, "203.0.113.5")
	if _, err := s.Login(src, k.Public(), loginReq(plain, "flapper")); err != nil {
		t.Fatal(err)
	}
	for range DefaultLoginPeerBurst {
		if _, err := s.Login(src, k.Public(), loginReq("", "flapper")); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Login(src, k.Public(), loginReq("", "flapper"))
	wantKind(t, err, KindExhausted, "re-authentication over the limit")
	for range 3 * DefaultLoginPeerBurst {
		if _, err := s.Login(ctx, k.Public(), loginReq("", "flapper")); err != nil {
			t.Fatalf("in-process login limited: %v", err)
		}
	}
	clk.Advance(time.Duration(float64(time.Second) / DefaultLoginPeerRate))
	if _, err := s.Login(src, k.Public(), loginReq("", "flapper")); err != nil {
		t.Fatalf("after the refill: %v", err)
	}
}

func asError(err error, e **Error) bool { return errors.As(err, e) }
