package identity

import "errors"

// Why Verify refused a token. Each error Verify returns wraps exactly one
// of these (errors.Is) and adds the detail; none of them carries the token.
var (
	// ErrMalformed: not a compact JWS, or larger than MaxTokenBytes.
	ErrMalformed = errors.New("id token malformed")
	// ErrSignature: unsigned ("alg": "none"), an algorithm the provider
	// does not announce, or a signature no published key verifies.
	ErrSignature = errors.New("id token signature not valid")
	// ErrIssuer: the "iss" claim is not the configured issuer.
	ErrIssuer = errors.New("id token from another issuer")
	// ErrAudience: issued to a client this server does not accept.
	ErrAudience = errors.New("id token for another client")
	// ErrExpired: past "exp" (plus the clock skew).
	ErrExpired = errors.New("id token expired")
	// ErrNotYetValid: "iat" or "nbf" in the future (beyond the skew).
	ErrNotYetValid = errors.New("id token not valid yet")
	// ErrNonce: not the nonce the caller expected.
	ErrNonce = errors.New("id token nonce does not match")
	// ErrNonceReplayed: a token with this nonce was accepted before.
	ErrNonceReplayed = errors.New("id token nonce already used")
	// ErrClaims: a required claim is missing or a claim has the wrong
	// type or an unusable value (subject, email, the groups claim).
	ErrClaims = errors.New("id token claims not usable")
	// ErrDomain: the email is missing, unverified or outside the allowed
	// domains.
	ErrDomain = errors.New("email domain not allowed")
	// ErrUnavailable: the provider's keys could not be fetched, or too
	// many recent nonces to remember; the token may be fine, retry later.
	ErrUnavailable = errors.New("identity provider unavailable")
)
