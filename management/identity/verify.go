package identity

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// noneAlg is only ever parsed so that an unsigned token gets its own error.
const noneAlg = jose.SignatureAlgorithm("none")

// parseAlgs are the algorithms checkHeader recognises, to name the one a
// refused token uses; which are accepted is Verifier.algs.
var parseAlgs = []jose.SignatureAlgorithm{noneAlg, jose.HS256, jose.HS384, jose.HS512,
	jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA}

// Verify checks an ID token and returns the identity it names. The token
// must be a compact JWS with an algorithm the provider announces (never
// "none"), and a key in the provider's JWKS must verify its signature
// (go-oidc); only then are the claims looked at: iss is the issuer; aud
// names an accepted client (and azp, when present or when aud has several
// entries, is one); exp, iat and nbf hold on this server's clock within
// the skew; the nonce is the expected one (ExpectNonce); the user claims
// are usable and the email domain is allowed; and the nonce, if any, has
// not been seen before. Only then is the nonce remembered, so a refused
// token changes nothing.
func (v *Verifier) Verify(ctx context.Context, rawIDToken string, opts ...VerifyOption) (*Identity, error) {
	var o verifyOptions
	for _, f := range opts {
		f(&o)
	}
	if err := v.checkHeader(rawIDToken); err != nil {
		return nil, err
	}
	var res sigResult
	tok, err := v.sig.Verify(context.WithValue(ctx, sigResultKey{}, &res), rawIDToken)
	switch {
	case err == nil:
	case res.fetchErr != nil:
		return nil, res.fetchErr
	case res.verified:
		return nil, fmt.Errorf("%w: %v", ErrClaims, err)
	default:
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	now := v.now()
	if err := v.checkStandard(tok, now); err != nil {
		return nil, err
	}
	if o.nonce != "" && subtle.ConstantTimeCompare([]byte(o.nonce), []byte(tok.Nonce)) != 1 {
		return nil, fmt.Errorf("%w: the token does not carry the nonce of this sign-in", ErrNonce)
	}
	if len(tok.Nonce) > maxNonce {
		return nil, fmt.Errorf("%w: nonce longer than %d bytes", ErrClaims, maxNonce)
	}
	var payload claimsPayload
	if err := tok.Claims(&payload); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrClaims, err)
	}
	c, err := parseClaims(payload, v.groupsClaim)
	if err != nil {
		return nil, err
	}
	if err := v.checkTimesAndParty(c, len(tok.Audience), now); err != nil {
		return nil, err
	}
	if err := v.checkDomain(c); err != nil {
		return nil, err
	}
	if tok.Nonce != "" {
		if err := v.nonces.add(tok.Nonce, tok.Expiry.Add(v.skew), now); err != nil {
			return nil, err
		}
	}
	return &Identity{
		Issuer: tok.Issuer, Subject: tok.Subject,
		Email: c.email, EmailVerified: c.emailVerified, Name: c.name,
		Groups: c.groups, Expiry: tok.Expiry,
	}, nil
}

// claimsPayload captures the verified payload as raw bytes.
type claimsPayload []byte

func (p *claimsPayload) UnmarshalJSON(b []byte) error {
	*p = append((*p)[:0], b...)
	return nil
}

// checkHeader refuses what is not a compact JWS signed with an announced
// algorithm, before any key is fetched.
func (v *Verifier) checkHeader(raw string) error {
	if len(raw) > MaxTokenBytes {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(raw), MaxTokenBytes)
	}
	jws, err := jose.ParseSignedCompact(raw, parseAlgs)
	if err != nil {
		var ua *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &ua) {
			return fmt.Errorf("%w: algorithm %q not accepted (the provider announces %v)", ErrSignature, ua.Got, v.algs)
		}
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	alg := jose.SignatureAlgorithm(jws.Signatures[0].Header.Algorithm)
	switch {
	case alg == noneAlg:
		return fmt.Errorf("%w: the token is unsigned (alg \"none\")", ErrSignature)
	case !slices.Contains(v.algs, alg):
		return fmt.Errorf("%w: algorithm %q not accepted (the provider announces %v)", ErrSignature, alg, v.algs)
	}
	return nil
}

// checkStandard checks the claims go-oidc parsed.
func (v *Verifier) checkStandard(tok *oidc.IDToken, now time.Time) error {
	if tok.Issuer != v.issuer {
		return fmt.Errorf("%w: issued by %q, this server trusts %q", ErrIssuer, tok.Issuer, v.issuer)
	}
	accepted := false
	for _, a := range tok.Audience {
		accepted = accepted || slices.Contains(v.audiences, a)
	}
	if !accepted {
		return fmt.Errorf("%w: audience %q names none of the accepted client IDs %q", ErrAudience, tok.Audience, v.audiences)
	}
	if tok.Expiry.IsZero() {
		return fmt.Errorf("%w: no \"exp\" claim", ErrClaims)
	}
	if now.After(tok.Expiry.Add(v.skew)) {
		return fmt.Errorf("%w: at %s, %s ago", ErrExpired, tok.Expiry.UTC().Format(time.RFC3339), now.Sub(tok.Expiry).Round(time.Second))
	}
	if tok.IssuedAt.IsZero() {
		return fmt.Errorf("%w: no \"iat\" claim", ErrClaims)
	}
	if tok.IssuedAt.After(now.Add(v.skew)) {
		return fmt.Errorf("%w: issued at %s, in the future", ErrNotYetValid, tok.IssuedAt.UTC().Format(time.RFC3339))
	}
	if tok.Subject == "" || len(tok.Subject) > maxSubject {
		return fmt.Errorf("%w: \"sub\" is empty or longer than %d bytes", ErrClaims, maxSubject)
	}
	return nil
}

// checkTimesAndParty checks nbf and azp, which go-oidc does not parse.
// An ID token for several audiences must name the one it was issued to in
// azp (OpenID Connect Core 1.0, section 3.1.3.7).
func (v *Verifier) checkTimesAndParty(c claims, audiences int, now time.Time) error {
	if !c.notBefore.IsZero() && c.notBefore.After(now.Add(v.skew)) {
		return fmt.Errorf("%w: not before %s", ErrNotYetValid, c.notBefore.UTC().Format(time.RFC3339))
	}
	switch {
	case c.azp != "" && !slices.Contains(v.audiences, c.azp):
		return fmt.Errorf("%w: authorized party %q is not an accepted client ID", ErrAudience, c.azp)
	case c.azp == "" && audiences > 1:
		return fmt.Errorf("%w: several audiences and no \"azp\" naming the client", ErrAudience)
	}
	return nil
}

// checkDomain enforces AllowedEmailDomains.
func (v *Verifier) checkDomain(c claims) error {
	if len(v.domains) == 0 {
		return nil
	}
	switch d := emailDomain(c.email); {
	case c.email == "":
		return fmt.Errorf("%w: the token has no email (request the email scope); sign-in is limited to %q", ErrDomain, v.domains)
	case !c.emailVerified:
		return fmt.Errorf("%w: the email is not verified at the provider", ErrDomain)
	case !slices.Contains(v.domains, d):
		return fmt.Errorf("%w: %q is not one of %q", ErrDomain, d, v.domains)
	}
	return nil
}
