package oidctest

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Signing says how Mint signs a token.
type Signing int

const (
	// SignProvider signs with the provider's current key, or with the
	// provider key Token.KeyID names (also a retired one).
	SignProvider Signing = iota
	// SignForeign signs with a key the provider never published; the
	// header names the current key's ID (or Token.KeyID), as a forger
	// copying a real token's header would.
	SignForeign
	// SignNone leaves the token unsigned ("alg": "none").
	SignNone
)

// Token describes a token for Mint. Zero values take the defaults noted.
type Token struct {
	Subject  string   // default: the first configured user
	Issuer   string   // default: the provider's issuer
	Audience []string // default: the agent client ID
	// AuthorizedParty is "azp"; default: the agent client ID when the
	// audience is the default, absent otherwise.
	AuthorizedParty string
	IssuedAt        time.Time // default: now
	Expiry          time.Time // default: IssuedAt + the ID token lifetime
	Nonce           string
	// Claims are set last, over the user's claims (email, email_verified,
	// name, the groups claim); a nil value removes a claim.
	Claims  map[string]any
	Signing Signing
	KeyID   string
}

// Mint builds an ID token as the provider would issue it, changed as tok
// says, and signs it with go-jose. The user claims come from the
// subject's user record, if there is one.
func (p *Provider) Mint(t testing.TB, tok Token) string {
	t.Helper()
	claims := p.claims(tok)
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return p.sign(t, payload, tok)
}

func (p *Provider) claims(tok Token) map[string]any {
	if tok.Subject == "" && len(p.cfg.Users) > 0 {
		tok.Subject = p.cfg.Users[0].Subject
	}
	if tok.Issuer == "" {
		tok.Issuer = p.Issuer()
	}
	if tok.Audience == nil {
		tok.Audience = []string{p.cfg.ClientID}
		if tok.AuthorizedParty == "" {
			tok.AuthorizedParty = p.cfg.ClientID
		}
	}
	if tok.IssuedAt.IsZero() {
		tok.IssuedAt = time.Now()
	}
	if tok.Expiry.IsZero() {
		tok.Expiry = tok.IssuedAt.Add(p.cfg.IDTokenLifetime)
	}
	c := map[string]any{
		"iss": tok.Issuer,
		"sub": tok.Subject,
		"iat": tok.IssuedAt.Unix(),
		"exp": tok.Expiry.Unix(),
	}
	if len(tok.Audience) == 1 {
		c["aud"] = tok.Audience[0] // the single-string form, which RFC 7519 allows
	} else {
		c["aud"] = tok.Audience
	}
	if tok.AuthorizedParty != "" {
		c["azp"] = tok.AuthorizedParty
	}
	if tok.Nonce != "" {
		c["nonce"] = tok.Nonce
	}
	p.st.mu.Lock()
	if u, ok := p.st.users[tok.Subject]; ok {
		c["email"] = u.Email
		c["email_verified"] = u.EmailVerified
		c["name"] = u.Name
		c[p.cfg.GroupsClaim] = append([]string{}, u.Groups...)
	}
	p.st.mu.Unlock()
	maps.Copy(c, tok.Claims)
	for k, v := range c {
		if v == nil {
			delete(c, k)
		}
	}
	return c
}

// MintPayload signs an arbitrary payload as Mint would sign a token.
func (p *Provider) MintPayload(t testing.TB, payload []byte, signing Signing) string {
	t.Helper()
	return p.sign(t, payload, Token{Signing: signing})
}

func (p *Provider) sign(t testing.TB, payload []byte, tok Token) string {
	t.Helper()
	kid := tok.KeyID
	if kid == "" {
		kid = p.keys.currentID()
	}
	var key *sigKey
	switch tok.Signing {
	case SignNone:
		enc := base64.RawURLEncoding
		return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + "."
	case SignForeign:
		var err error
		if key, err = newSigKey(p.cfg.RSA); err != nil {
			t.Fatal(err)
		}
		key.id = kid
	default:
		var ok bool
		if key, ok = p.keys.byID(kid); !ok {
			t.Fatalf("oidctest: no key %q", kid)
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.alg, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.id}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
