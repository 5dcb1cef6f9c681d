package restapi

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"petrel/internal/keys"
	"petrel/management/identity"
	"petrel/management/model"
	"petrel/proto/managementpb"
)

// fakeIssuer is the issuer of fakeIdP's identities.
const fakeIssuer = "https://idp.test"

// fakeIdP is a test-only management.TokenVerifier: a token is a key of a
// map of identities, valid as an ID token (agent sign-in) and as an access
// token (this API). The REST layer only needs "this token names that
// user"; checking real tokens of a real OpenID provider (signatures, the
// device flow, refusals) is the job of the identity package's tests and
// the end-to-end test with a provider, not of these.
type fakeIdP struct {
	mu   sync.Mutex
	ids  map[string]identity.Identity
	down bool // every check fails with identity.ErrUnavailable
}

func newFakeIdP() *fakeIdP { return &fakeIdP{ids: map[string]identity.Identity{}} }

func (f *fakeIdP) lookup(token string) (*identity.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, fmt.Errorf("%w: fake provider down", identity.ErrUnavailable)
	}
	id, ok := f.ids[token]
	if !ok {
		return nil, fmt.Errorf("%w: unknown to the fake provider", identity.ErrSignature)
	}
	return &id, nil
}

func (f *fakeIdP) Verify(_ context.Context, raw string, _ ...identity.VerifyOption) (*identity.Identity, error) {
	return f.lookup(raw)
}

func (f *fakeIdP) UserInfo(_ context.Context, token string) (*identity.Identity, error) {
	return f.lookup(token)
}

func (f *fakeIdP) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// testClock is the wall clock plus an offset tests can advance.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// person is a user of the fake provider: token is their OpenID token
// (ID token for agents, access token for this API).
type person struct {
	id, email, token string
}

// signIn creates the user name@example.com through the service (as their
// first API call with an OpenID access token does) with the given role
// (set by the admin token).
func (e *env) signIn(name string, role model.Role) person {
	e.t.Helper()
	p := person{email: name + "@example.com", token: "oidc." + name + ".sig"}
	e.idp.mu.Lock()
	e.idp.ids[p.token] = identity.Identity{Issuer: fakeIssuer, Subject: "sub-" + name, Email: p.email, EmailVerified: true, Name: strings.ToUpper(name[:1]) + name[1:]}
	e.idp.mu.Unlock()
	pr, err := e.svc.Authenticate(context.Background(), p.token)
	if err != nil {
		e.t.Fatalf("sign in %s: %v", name, err)
	}
	p.id = pr.UserID
	if role != model.RoleUser {
		e.must("PATCH", "/api/users/"+p.id, map[string]any{"role": role}, 200, nil)
	}
	return p
}

// userPeer registers a peer of p as an agent signing in with the device
// flow does (LoginRequest.jwt).
func (e *env) userPeer(p person, hostname string) *model.Peer {
	e.t.Helper()
	priv, err := keys.NewPrivate()
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.Login(context.Background(), priv.Public(), &managementpb.LoginRequest{Jwt: p.token, Hostname: hostname}); err != nil {
		e.t.Fatalf("login %s as %s: %v", hostname, p.email, err)
	}
	for _, peer := range e.snapshot().Peers {
		if peer.PublicKey == priv.Public().String() {
			if peer.UserID != p.id {
				e.t.Fatalf("peer %s has user %q, want %q", hostname, peer.UserID, p.id)
			}
			return peer
		}
	}
	e.t.Fatalf("peer %s not in snapshot", hostname)
	return nil
}

// as sends a request with token, checks the status and decodes into out.
func (e *env) as(token, method, path string, body any, want int, out any) []byte {
	e.t.Helper()
	ct := mediaJSON
	if method == "PATCH" {
		ct = mediaMergePatch
	}
	st, b := e.send(token, method, path, ct, body)
	if st != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, st, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return b
}

// failsAs is fails with another token: status, code and message, and
// nothing changed.
func (e *env) failsAs(token, method, path string, body any, status int, code, msg string) {
	e.t.Helper()
	before := e.snapshot()
	ct := mediaJSON
	if method == "PATCH" {
		ct = mediaMergePatch
	}
	st, b := e.send(token, method, path, ct, body)
	var eb errorBody
	if err := json.Unmarshal(b, &eb); err != nil {
		e.t.Fatalf("%s %s: error body %q is not JSON: %v", method, path, b, err)
	}
	if st != status || eb.Code != code || !strings.Contains(eb.Error, msg) {
		e.t.Fatalf("%s %s: got %d %+v, want %d %s containing %q", method, path, st, eb, status, code, msg)
	}
	after := e.snapshot()
	if !reflect.DeepEqual(before, after) {
		e.t.Fatalf("%s %s: failed request changed the account", method, path)
	}
}

// pat creates a personal access token for p, as p, and returns the secret.
func (e *env) pat(p person, name string, expiresIn any) string {
	e.t.Helper()
	body := map[string]any{"name": name}
	if expiresIn != nil {
		body["expires_in"] = expiresIn
	}
	var v tokenView
	e.as(p.token, "POST", "/api/users/me/tokens", body, 201, &v)
	if !strings.HasPrefix(v.Token, "ppat_") || v.ID == "" {
		e.t.Fatalf("created token: %+v", v)
	}
	return v.Token
}
