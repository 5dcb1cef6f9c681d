// Package identity verifies the OpenID Connect ID tokens users sign in
// with: an agent runs the device flow at the provider (client/oidcdevice)
// and sends the ID token as LoginRequest.jwt; the server turns it into an
// Identity (subject, email, name, groups) or a typed error (errors.go).
//
// New discovers the provider (.well-known/openid-configuration, whose
// issuer must match exactly). Signatures are checked by
// github.com/coreos/go-oidc/v3 against the provider's JWKS (keyset.go: a
// new key is fetched when first seen, a removed one stops verifying within
// KeyCacheTTL). Issuer, audience, times, nonce and the user claims are
// checked here so each failure has its own error (verify.go, claims.go);
// nonces of accepted tokens are remembered until the tokens expire
// (nonce.go). Only ID tokens: access tokens for the REST API are not
// handled yet.
//
// The management service imports it. A *Verifier is safe for concurrent
// use; Verify runs on the caller's goroutine and may wait for a key fetch,
// which go-oidc runs on a goroutine of its own and shares between callers.
// Tokens are never logged or put into errors.
package identity
