package identity

import (
	"context"
	"errors"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"petrel/internal/oidctest"
)

func kid(t *testing.T, raw string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

func TestKeyRotationWithGrace(t *testing.T) {
	const ttl = 10 * time.Minute
	p, v, c := setup(t, oidctest.Config{}, func(c *Config) { c.KeyCacheTTL = ttl })
	ctx := context.Background()
	first := p.KeyID()
	oldTok := deviceLogin(t, p, "u1")
	if _, err := v.Verify(ctx, oldTok); err != nil {
		t.Fatal(err)
	}

	// A new key: tokens it signs verify at once (an unknown kid fetches the
	// JWKS again), and the old key's tokens still do while it is published.
	second := p.RotateKey(t)
	newTok := deviceLogin(t, p, "u1")
	if kid(t, newTok) != second || kid(t, oldTok) != first {
		t.Fatalf("kids %s, %s; want %s, %s", kid(t, oldTok), kid(t, newTok), first, second)
	}
	for _, tok := range []string{newTok, oldTok} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}

	// The provider drops the old key. It keeps verifying until the key
	// cache is older than KeyCacheTTL, then no more.
	p.RetireOldKeys()
	c.add(ttl - time.Second)
	if _, err := v.Verify(ctx, oldTok); err != nil {
		t.Fatalf("old key within the cache TTL: %v", err)
	}
	c.add(2 * time.Second)
	if _, err := v.Verify(ctx, oldTok); !errors.Is(err, ErrSignature) {
		t.Fatalf("old key after it left the JWKS: %v", err)
	}
	if _, err := v.Verify(ctx, newTok); err != nil {
		t.Fatal(err)
	}
}

func TestKeyRotationWithoutGrace(t *testing.T) {
	p, v, _ := setup(t, oidctest.Config{}, nil)
	ctx := context.Background()
	oldTok := deviceLogin(t, p, "u1")
	if _, err := v.Verify(ctx, oldTok); err != nil {
		t.Fatal(err)
	}
	first := p.KeyID()
	p.RotateKey(t)
	p.RetireOldKeys()
	if _, err := v.Verify(ctx, deviceLogin(t, p, "u1")); err != nil {
		t.Fatal(err)
	}
	// Fetching the JWKS for the new key replaces the cached set (go-oidc
	// stores it just after handing the keys to the waiting Verify), so the
	// old key is refused from then on, well within KeyCacheTTL; the clock
	// does not move.
	waitRefused(t, v, oldTok)
	waitRefused(t, v, p.Mint(t, oidctest.Token{KeyID: first}))
}

// waitRefused polls until tok is refused with ErrSignature.
func waitRefused(t *testing.T, v *Verifier, tok string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := v.Verify(context.Background(), tok)
		if errors.Is(err, ErrSignature) {
			return
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("retired key: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
