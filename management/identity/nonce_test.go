package identity

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"petrel/internal/oidctest"
)

func TestNonce(t *testing.T) {
	p, v, c := setup(t, oidctest.Config{}, nil)
	ctx := context.Background()
	now := c.now()

	tok := p.Mint(t, oidctest.Token{Nonce: "n-1"})
	if _, err := v.Verify(ctx, tok, ExpectNonce("n-2")); !errors.Is(err, ErrNonce) {
		t.Fatalf("other nonce expected: %v", err)
	}
	if _, err := v.Verify(ctx, p.Mint(t, oidctest.Token{}), ExpectNonce("n-1")); !errors.Is(err, ErrNonce) {
		t.Fatalf("nonce expected, none in the token: %v", err)
	}
	if _, err := v.Verify(ctx, tok, ExpectNonce("n-1")); err != nil {
		t.Fatal(err)
	}
	// The same token again, or another token with the same nonce, with or
	// without the caller expecting it: replayed.
	for _, again := range []string{tok, p.Mint(t, oidctest.Token{Nonce: "n-1", IssuedAt: now.Add(time.Second)})} {
		if _, err := v.Verify(ctx, again, ExpectNonce("n-1")); !errors.Is(err, ErrNonceReplayed) {
			t.Fatalf("replay: %v", err)
		}
		if _, err := v.Verify(ctx, again); !errors.Is(err, ErrNonceReplayed) {
			t.Fatalf("replay, nonce not expected: %v", err)
		}
	}
	if _, err := v.Verify(ctx, p.Mint(t, oidctest.Token{Nonce: strings.Repeat("n", maxNonce+1)})); !errors.Is(err, ErrClaims) {
		t.Fatalf("huge nonce: %v", err)
	}
}

func TestNonceSetBoundedAndExpiring(t *testing.T) {
	s := newNonceSet(2)
	t0 := time.Unix(1_800_000_000, 0)
	if err := s.add("a", t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.add("b", t0.Add(2*time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.add("c", t0.Add(time.Minute), t0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("over the bound: %v", err)
	}
	if err := s.add("a", t0.Add(time.Minute), t0.Add(30*time.Second)); !errors.Is(err, ErrNonceReplayed) {
		t.Fatalf("replay: %v", err)
	}
	// Once "a"'s token has expired its nonce is forgotten and room made.
	t1 := t0.Add(61 * time.Second)
	if err := s.add("c", t1.Add(time.Minute), t1); err != nil {
		t.Fatal(err)
	}
	if s.len() != 2 {
		t.Fatalf("%d nonces remembered, want 2", s.len())
	}
	if err := s.add("b", t1.Add(time.Minute), t1); !errors.Is(err, ErrNonceReplayed) {
		t.Fatalf("b still valid: %v", err)
	}
}
