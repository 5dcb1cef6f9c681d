package identity

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"petrel/internal/oidctest"
)

// TestRefusedTokens covers each way a token is refused, and the edges
// that are still accepted. Every token is signed by the provider's
// published key unless the case says otherwise, so each refusal is for the
// one reason named.
func TestRefusedTokens(t *testing.T) {
	p, v, c := setup(t, oidctest.Config{}, nil)
	now := c.now()
	client := p.ClientID()
	cases := []struct {
		name  string
		tok   oidctest.Token
		raw   string // instead of tok
		want  error
		which string // in the message
	}{
		{name: "valid", tok: oidctest.Token{}},
		{name: "expired", tok: oidctest.Token{IssuedAt: now.Add(-2 * time.Hour), Expiry: now.Add(-time.Hour)}, want: ErrExpired, which: "ago"},
		{name: "expired beyond the skew", tok: oidctest.Token{IssuedAt: now.Add(-time.Hour), Expiry: now.Add(-61 * time.Second)}, want: ErrExpired},
		{name: "expired within the skew", tok: oidctest.Token{IssuedAt: now.Add(-time.Hour), Expiry: now.Add(-59 * time.Second)}},
		{name: "no exp", tok: oidctest.Token{Claims: map[string]any{"exp": nil}}, want: ErrClaims, which: `"exp"`},
		{name: "issued in the future", tok: oidctest.Token{IssuedAt: now.Add(2 * time.Minute)}, want: ErrNotYetValid},
		{name: "issued just ahead within the skew", tok: oidctest.Token{IssuedAt: now.Add(59 * time.Second)}},
		{name: "no iat", tok: oidctest.Token{Claims: map[string]any{"iat": nil}}, want: ErrClaims, which: `"iat"`},
		{name: "not before later", tok: oidctest.Token{Claims: map[string]any{"nbf": now.Add(5 * time.Minute).Unix()}}, want: ErrNotYetValid},
		{name: "not before now", tok: oidctest.Token{Claims: map[string]any{"nbf": now.Unix()}}},
		{name: "nbf not a number", tok: oidctest.Token{Claims: map[string]any{"nbf": "soon"}}, want: ErrClaims},
		{name: "wrong audience", tok: oidctest.Token{Audience: []string{"someone-else"}}, want: ErrAudience, which: "someone-else"},
		{name: "no audience", tok: oidctest.Token{Claims: map[string]any{"aud": nil}}, want: ErrAudience},
		{name: "audiences with azp", tok: oidctest.Token{Audience: []string{"someone-else", client}, AuthorizedParty: client}},
		{name: "audiences without azp", tok: oidctest.Token{Audience: []string{"someone-else", client}}, want: ErrAudience, which: "azp"},
		{name: "azp another client", tok: oidctest.Token{Audience: []string{"someone-else", client}, AuthorizedParty: "someone-else"}, want: ErrAudience},
		{name: "wrong issuer", tok: oidctest.Token{Issuer: "https://evil.example"}, want: ErrIssuer, which: "evil.example"},
		{name: "issuer with trailing slash", tok: oidctest.Token{Issuer: p.Issuer() + "/"}, want: ErrIssuer},
		{name: "unsigned", tok: oidctest.Token{Signing: oidctest.SignNone}, want: ErrSignature, which: `alg "none"`},
		{name: "re-signed with another key, same kid", tok: oidctest.Token{Signing: oidctest.SignForeign}, want: ErrSignature},
		{name: "signed with another key, unknown kid", tok: oidctest.Token{Signing: oidctest.SignForeign, KeyID: "forged"}, want: ErrSignature},
		{name: "HMAC with a guessable secret", raw: hmacToken(t, p), want: ErrSignature, which: `"HS256" not accepted`},
		{name: "payload swapped under a valid signature", raw: swapPayload(p.Mint(t, oidctest.Token{}), p.Mint(t, oidctest.Token{Subject: "u3"})), want: ErrSignature},
		{name: "not a JWT", raw: "not-a-token", want: ErrMalformed},
		{name: "JSON serialization", raw: `{"payload":"e30","signatures":[]}`, want: ErrMalformed},
		{name: "too large", tok: oidctest.Token{Claims: map[string]any{"pad": strings.Repeat("x", MaxTokenBytes)}}, want: ErrMalformed, which: "more than"},
		{name: "no subject", tok: oidctest.Token{Claims: map[string]any{"sub": ""}}, want: ErrClaims, which: `"sub"`},
		{name: "subject too long", tok: oidctest.Token{Claims: map[string]any{"sub": strings.Repeat("s", 256)}}, want: ErrClaims},
		{name: "groups missing", tok: oidctest.Token{Claims: map[string]any{"groups": nil}}, want: ErrClaims, which: `no "groups" claim`},
		{name: "groups a number", tok: oidctest.Token{Claims: map[string]any{"groups": 7}}, want: ErrClaims, which: "is a number"},
		{name: "groups an object", tok: oidctest.Token{Claims: map[string]any{"groups": map[string]any{"eng": true}}}, want: ErrClaims, which: "is an object"},
		{name: "groups with a number", tok: oidctest.Token{Claims: map[string]any{"groups": []any{"eng", 2}}}, want: ErrClaims, which: "element 1 is a number"},
		{name: "groups with an empty name", tok: oidctest.Token{Claims: map[string]any{"groups": []string{"eng", " "}}}, want: ErrClaims, which: "empty"},
		{name: "groups with a control character", tok: oidctest.Token{Claims: map[string]any{"groups": []string{"eng\x1b[2J"}}}, want: ErrClaims},
		{name: "groups too many", tok: oidctest.Token{Claims: map[string]any{"groups": make([]string, MaxGroups+1)}}, want: ErrClaims, which: "more than"},
		{name: "groups a single string", tok: oidctest.Token{Claims: map[string]any{"groups": "eng"}}},
		{name: "email not a string", tok: oidctest.Token{Claims: map[string]any{"email": []string{"a@b"}}}, want: ErrClaims},
		{name: "email_verified not a boolean", tok: oidctest.Token{Claims: map[string]any{"email_verified": "yes"}}, want: ErrClaims},
		{name: "name not a string", tok: oidctest.Token{Claims: map[string]any{"name": 5}}, want: ErrClaims},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw
			if raw == "" {
				raw = p.Mint(t, tc.tok)
			}
			id, err := v.Verify(context.Background(), raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil {
				if id != nil {
					t.Fatal("identity returned with an error")
				}
				if !strings.Contains(err.Error(), tc.which) {
					t.Fatalf("error %q does not say %q", err, tc.which)
				}
				if len(raw) > 20 && strings.Contains(err.Error(), raw[len(raw)-20:]) {
					t.Fatalf("error %q quotes the token", err)
				}
			}
		})
	}
}

// hmacToken is a token whose header says HS256, "signed" with the public
// JWKS as the secret: the classic algorithm-confusion forgery.
func hmacToken(t *testing.T, p *oidctest.Provider) string {
	good := p.Mint(t, oidctest.Token{})
	parts := strings.SplitN(good, ".", 3)
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","kid":"` + p.KeyID() + `"}`))
	return hdr + "." + parts[1] + "." + parts[2]
}

// swapPayload puts b's payload under a's header and signature.
func swapPayload(a, b string) string {
	pa, pb := strings.SplitN(a, ".", 3), strings.SplitN(b, ".", 3)
	return pa[0] + "." + pb[1] + "." + pa[2]
}

// TestRefusalChangesNothing: a refused token carrying a nonce does not
// use the nonce up; the same nonce in a valid token is then accepted once.
func TestRefusalChangesNothing(t *testing.T) {
	p, v, _ := setup(t, oidctest.Config{}, nil)
	ctx := context.Background()
	for _, bad := range []oidctest.Token{
		{Nonce: "n1", Audience: []string{"other"}},
		{Nonce: "n1", Claims: map[string]any{"groups": 1}},
		{Nonce: "n1", Signing: oidctest.SignForeign},
	} {
		if _, err := v.Verify(ctx, p.Mint(t, bad)); err == nil {
			t.Fatal("bad token accepted")
		}
	}
	if n := v.nonces.len(); n != 0 {
		t.Fatalf("%d nonces remembered after refusals", n)
	}
	good := p.Mint(t, oidctest.Token{Nonce: "n1"})
	if _, err := v.Verify(ctx, good, ExpectNonce("n1")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, good, ExpectNonce("n1")); !errors.Is(err, ErrNonceReplayed) {
		t.Fatalf("replay: %v", err)
	}
}
