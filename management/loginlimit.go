package management

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"petrel/internal/grpcsource"
	"petrel/internal/keys"
	"petrel/internal/ratelimit"
)

// LoginLimits bound logins per source address and per peer key. A zero
// field takes its default; a negative rate turns that limit off (load
// tests that run thousands of agents from one address).
type LoginLimits struct {
	// Failed setup-key attempts per source: a source over the limit is
	// refused before its key is looked up, so guessing stops.
	FailRate  float64 // per second (default 0.2: 12 a minute)
	FailBurst int     // default 10
	// Logins (registrations and re-authentications) per source: a NAT
	// with a fleet of agents restarting together stays under it.
	SourceRate  float64 // per second (default 20)
	SourceBurst int     // default 200
	// Re-authentications per peer key.
	PeerRate  float64 // per second (default 0.5)
	PeerBurst int     // default 10
}

// Default login limits.
const (
	DefaultLoginFailRate    = 0.2
	DefaultLoginFailBurst   = 10
	DefaultLoginSourceRate  = 20
	DefaultLoginSourceBurst = 200
	DefaultLoginPeerRate    = 0.5
	DefaultLoginPeerBurst   = 10

	loginLimitKeys = 65536
)

type loginLimiters struct {
	fails  *ratelimit.Limiter[netip.Addr]
	source *ratelimit.Limiter[netip.Addr]
	peer   *ratelimit.Limiter[keys.Public]
}

func newLoginLimiters(l LoginLimits, now func() time.Time) loginLimiters {
	var out loginLimiters
	if r, b := orDefault(l.FailRate, DefaultLoginFailRate), orDefaultInt(l.FailBurst, DefaultLoginFailBurst); r > 0 {
		out.fails = ratelimit.New[netip.Addr](r, b, loginLimitKeys).WithClock(now)
	}
	if r, b := orDefault(l.SourceRate, DefaultLoginSourceRate), orDefaultInt(l.SourceBurst, DefaultLoginSourceBurst); r > 0 {
		out.source = ratelimit.New[netip.Addr](r, b, loginLimitKeys).WithClock(now)
	}
	if r, b := orDefault(l.PeerRate, DefaultLoginPeerRate), orDefaultInt(l.PeerBurst, DefaultLoginPeerBurst); r > 0 {
		out.peer = ratelimit.New[keys.Public](r, b, loginLimitKeys).WithClock(now)
	}
	return out
}

func orDefault(v, d float64) float64 {
	if v == 0 {
		return d
	}
	return v
}

func orDefaultInt(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

// sourceOf is the remote IP of the call (the zero Addr when the
// transport has none).
func sourceOf(ctx context.Context) netip.Addr { return grpcsource.Addr(ctx) }

func limited(what string, wait time.Duration) error {
	wait = max(wait.Round(time.Second), time.Second)
	return &Error{Kind: KindExhausted, Msg: fmt.Sprintf("%s; retry in %v", what, wait), RetryAfter: wait}
}

// limitKey is the key a source is limited under: its IPv4 address, or
// its IPv6 /64 (one subscriber's whole range).
func limitKey(src netip.Addr) netip.Addr {
	if src.Is6() {
		return netip.PrefixFrom(src, 64).Masked().Addr()
	}
	return src
}

// PrecheckRegistration refuses, before anything is remembered about the
// request, a registration from a source that has used up its failed
// setup keys or whose setup key does not exist (counted as a failure).
// The gRPC edge calls it for keys that are not registered yet, so that
// strangers without a valid setup key cannot fill its replay memory.
func (s *Service) PrecheckRegistration(ctx context.Context, peerKey keys.Public, setupKey string) error {
	src := sourceOf(ctx)
	if src.IsValid() {
		if ok, wait := s.limits.fails.Check(limitKey(src)); !ok {
			return limited(fmt.Sprintf("too many failed setup keys from %s", src), wait)
		}
	}
	secret := strings.TrimSpace(setupKey)
	if secret == "" {
		return Errorf(KindUnauthenticated, "peer is not registered: a setup key is required")
	}
	if id := s.findSetupKeyFresh(ctx, hashSecret(secret)); id == "" {
		err := Errorf(KindUnauthenticated, "setup key not found")
		s.setupKeyFailed(src, peerKey, err)
		return err
	}
	return nil
}

// admitLogin applies the per-source login rate before a Login does any
// work.
func (s *Service) admitLogin(src netip.Addr) error {
	if !src.IsValid() {
		return nil
	}
	if ok, wait := s.limits.source.Allow(limitKey(src)); !ok {
		return limited(fmt.Sprintf("too many logins from %s", src), wait)
	}
	return nil
}

// admitReauth limits re-authentications of one peer key.
func (s *Service) admitReauth(src netip.Addr, pk keys.Public) error {
	if !src.IsValid() {
		return nil
	}
	if ok, wait := s.limits.peer.Allow(pk); !ok {
		return limited("too many logins of this peer", wait)
	}
	return nil
}

// setupKeyFailed counts a refused setup key against its source and logs it
// (never the key).
func (s *Service) setupKeyFailed(src netip.Addr, peerKey keys.Public, err error) {
	if src.IsValid() {
		s.limits.fails.Allow(limitKey(src))
	}
	s.log.Info("registration refused", "source", src, "peer", peerKey.Short(), "reason", err)
}

// signInFailed counts a refused sign-in token against its source, like a
// wrong setup key: a source that keeps sending bad tokens is refused
// before its requests reach replay memory (PrecheckSignIn).
func (s *Service) signInFailed(src netip.Addr, peerKey keys.Public, err error) {
	if src.IsValid() {
		s.limits.fails.Allow(limitKey(src))
	}
	s.log.Info("sign-in refused", "source", src, "peer", peerKey.Short(), "reason", err)
}
