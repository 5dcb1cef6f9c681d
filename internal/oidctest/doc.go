// Package oidctest runs a real OpenID provider inside a test: the OP of
// github.com/zitadel/oidc/v3 (an OpenID-certified implementation) over
// HTTPS on loopback, with in-memory storage written here for static users
// and groups, one public client for the agent's device flow (RFC 8628), a
// second, web client for the authorization-code flow with PKCE (the
// dashboard's), and ES256 or RS256 signing keys that the test can rotate.
//
//   - provider.go: Config, User, Start and the accessors a test uses.
//   - storage.go, device.go, code.go, keys.go: the op.Storage the OP calls
//     (code.go: the code flow's auth requests and the web client).
//   - pages.go: the HTML pages a user visits to approve a device (enter the
//     user code, sign in, allow or deny) and the code flow's login page
//     (sign in or deny); browser.go submits those forms over HTTP the way a
//     browser would (ApproveDevice, DenyDevice, AuthorizeCode, DenyCode).
//   - mint.go: deliberately bad ID tokens for negative tests (expired, wrong
//     audience or issuer, unsigned, signed by a key the provider does not
//     publish, any nonce), built and signed with go-jose.
//
// Imported by tests only. Start takes a testing.TB, fails the test on error
// and stops the server when the test ends. A *Provider is safe for
// concurrent use: the OP's HTTP handlers run on the server's goroutines and
// share the storage with the test goroutine through one mutex (the key ring
// has its own).
package oidctest
