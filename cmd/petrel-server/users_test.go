package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"petrel/internal/keys"
	"petrel/management"
	"petrel/management/identity"
	"petrel/management/restapi"
	"petrel/management/store/sqlite"
	"petrel/proto/managementpb"
)

// fakeIdP is a test-only management.TokenVerifier: each token is a key of
// a map of identities, accepted as an ID token (agent sign-in) and as an
// access token (the REST API). The admin commands only need users to
// exist; real tokens of a real OpenID provider are tested by the identity
// package and the end-to-end test with a provider.
type fakeIdP struct {
	mu  sync.Mutex
	ids map[string]identity.Identity
}

func (f *fakeIdP) lookup(token string) (*identity.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
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

// userAdmin is a management service with users (real SQLite store, real
// REST API on loopback) signed in through fakeIdP.
type userAdmin struct {
	admin
	svc *management.Service
	idp *fakeIdP
}

func startUserAdmin(t *testing.T) *userAdmin {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "petrel.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	idp := &fakeIdP{ids: map[string]identity.Identity{}}
	svc, err := management.New(management.Config{Store: st, Logger: log,
		Identity: &management.IdentityConfig{Verifier: idp, Issuer: "https://idp.test", ClientID: "petrel"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	token, _, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(restapi.New(svc, log))
	t.Cleanup(func() {
		srv.Close()
		svc.Stop()
		_ = st.Close()
	})
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &userAdmin{admin: admin{base: srv.URL, tokenFile: tokenFile}, svc: svc, idp: idp}
}

// signIn creates the user name@example.com with a peer of theirs, as an
// agent's sign-in does, and returns the user's ID.
func (a *userAdmin) signIn(t *testing.T, name string) string {
	t.Helper()
	tok := "oidc." + name + ".sig"
	a.idp.mu.Lock()
	a.idp.ids[tok] = identity.Identity{Issuer: "https://idp.test", Subject: "sub-" + name, Email: name + "@example.com", EmailVerified: true, Name: name}
	a.idp.mu.Unlock()
	priv, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.Login(context.Background(), priv.Public(), &managementpb.LoginRequest{Jwt: tok, Hostname: name + "-laptop"}); err != nil {
		t.Fatalf("sign in %s: %v", name, err)
	}
	p, err := a.svc.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	return p.UserID
}

// with returns the admin flags with another token file.
func (a *userAdmin) with(tokenFile string) *admin {
	return &admin{base: a.base, tokenFile: tokenFile}
}

func TestAdminUsers(t *testing.T) {
	a := startUserAdmin(t)
	aliceID := a.signIn(t, "alice")
	a.signIn(t, "bob")

	out := a.ok(t, "users", "list")
	if !regexpLine(out, `^alice@example\.com +alice +user +no +1 +- +\S+ +`+aliceID+`$`) || !regexpLine(out, `^bob@example\.com `) {
		t.Fatalf("users list:\n%s", out)
	}
	if out := a.ok(t, "users", "update", "alice@example.com", "--role", "admin"); out != "updated user alice@example.com (id "+aliceID+")\n" {
		t.Fatalf("update: %q", out)
	}
	a.ok(t, "users", "update", aliceID, "--blocked")
	var u userJSON
	a.jsonOf(t, &u, "users", "show", "alice@example.com")
	if u.Role != "admin" || !u.Blocked || len(u.Peers) != 1 {
		t.Fatalf("alice after update: %+v", u)
	}
	a.ok(t, "users", "update", "alice@example.com", "--blocked=false")
	if out := a.ok(t, "users", "show", aliceID); !strings.Contains(out, "blocked: false") || !strings.Contains(out, "role: admin") {
		t.Fatalf("show:\n%s", out)
	}
	a.fails(t, 2, `--role "root": want owner, admin or user`, "users", "update", "bob@example.com", "--role", "root")
	a.fails(t, 2, "nothing to update", "users", "update", "bob@example.com")
	a.fails(t, 1, `server answered 400: "me" names the signed-in user, but this is an admin token`, "users", "show", "me")
	a.fails(t, 1, `user "carol@example.com" not found`, "users", "show", "carol@example.com")
	a.fails(t, 1, `server answered 400: "email" is read-only`, "users", "update", "bob@example.com", "-f",
		writeFile(t, "u.yaml", "email: robert@example.com\nrole: user\n"))

	if out := a.ok(t, "users", "delete", "bob@example.com"); out != "deleted user bob@example.com\n" {
		t.Fatalf("delete: %q", out)
	}
	var all []userJSON
	a.jsonOf(t, &all, "users", "list")
	if len(all) != 1 || all[0].ID != aliceID {
		t.Fatalf("users after delete: %+v", all)
	}
}

func TestAdminTokens(t *testing.T) {
	a := startUserAdmin(t)
	a.signIn(t, "alice")

	out := a.ok(t, "tokens", "create", "--user", "alice@example.com", "--name", "ci", "--expires-in", "720h")
	pat := strings.TrimSpace(out)
	if !strings.HasPrefix(pat, "ppat_") || strings.Count(out, "\n") != 1 {
		t.Fatalf("create printed %q, want the token alone", out)
	}
	alice := a.with(writeFile(t, "pat", pat+"\n"))
	if out := alice.ok(t, "users", "show", "me"); !strings.Contains(out, "email: alice@example.com") {
		t.Fatalf("show me with the PAT:\n%s", out)
	}
	out = alice.ok(t, "tokens", "list")
	if !regexpLine(out, `^ci +ppat_\S+ +\S+ +\S+ +valid +\S+$`) || strings.Contains(out, pat) {
		t.Fatalf("tokens list:\n%s", out)
	}
	if out := a.ok(t, "tokens", "list", "--user", "alice@example.com", "--json"); strings.Contains(out, pat) || strings.Contains(out, "hash") {
		t.Fatalf("tokens list --json shows the secret:\n%s", out)
	}
	// A user's token has the user's role.
	alice.fails(t, 1, "server answered 403: this needs the admin role; you are signed in as alice@example.com (user)", "groups", "list")

	a.fails(t, 2, "--name is required", "tokens", "create")
	a.fails(t, 2, `--expires-in: bad duration "soon"`, "tokens", "create", "--name", "x", "--expires-in", "soon")
	a.fails(t, 1, `server answered 400: "me" names the signed-in user`, "tokens", "create", "--name", "x")
	a.fails(t, 1, `access token "nope" not found`, "tokens", "revoke", "nope", "--user", "alice@example.com")

	// Revoked: the next command is refused.
	if out := alice.ok(t, "tokens", "revoke", "ci"); out != "revoked access token ci\n" {
		t.Fatalf("revoke: %q", out)
	}
	alice.fails(t, 1, "rejected", "users", "show", "me")
}

func TestAdminEvents(t *testing.T) {
	a := startUserAdmin(t)
	aliceID := a.signIn(t, "alice")
	a.ok(t, "groups", "create", "--name", "web")
	a.ok(t, "users", "update", "alice@example.com", "--role", "admin")

	out := a.ok(t, "events")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 4 || !regexpLine(lines[0], `^TIME +ACTOR +ACTION +TARGET +DETAIL$`) ||
		!regexpLine(lines[1], `^\S+ +admin-token:\S+ +user\.update +user `+aliceID+` +alice@example\.com$`) ||
		!regexpLine(out, `^\S+ +admin-token:\S+ +group\.create +group \S+ +-$`) ||
		!regexpLine(out, `^\S+ +alice@example\.com +peer\.register +peer \S+ +alice-laptop$`) {
		t.Fatalf("events:\n%s", out)
	}
	var evs []eventJSON
	a.jsonOf(t, &evs, "events", "--actor", "alice@example.com")
	if len(evs) == 0 {
		t.Fatal("no events of alice")
	}
	for _, e := range evs {
		if e.Actor != "user:"+aliceID {
			t.Fatalf("--actor alice: %+v", e)
		}
	}
	a.jsonOf(t, &evs, "events", "--action", "group.", "--since", "1h")
	if len(evs) != 1 || evs[0].Action != "group.create" {
		t.Fatalf("--action group.: %+v", evs)
	}
	a.jsonOf(t, &evs, "events", "--limit", "2")
	var all []eventJSON
	a.jsonOf(t, &all, "events")
	if len(evs) != 2 || evs[0].Seq != all[0].Seq || evs[1].Seq != all[1].Seq {
		t.Fatalf("--limit 2: %+v", evs)
	}
	raw := a.ok(t, "events", "--json", "--limit", "1")
	var one []json.RawMessage
	if err := json.Unmarshal([]byte(raw), &one); err != nil || len(one) != 1 {
		t.Fatalf("--json: %v %s", err, raw)
	}
	a.fails(t, 2, `--since: "yesterday"`, "events", "--since", "yesterday")
	a.fails(t, 2, "--limit 0", "events", "--limit", "0")
	a.fails(t, 1, `server answered 400: target_kind "planet"`, "events", "--target-kind", "planet")
}

func TestAdminSettings(t *testing.T) {
	a := startUserAdmin(t)
	if out := a.ok(t, "settings", "show"); out != "dns_domain: petrel.internal\nlogin_expiration_seconds: 0\n" {
		t.Fatalf("settings show: %q", out)
	}
	a.ok(t, "settings", "update", "--login-expiration", "24h")
	a.ok(t, "settings", "update", "--dns-domain", "mesh.example")
	if out := a.ok(t, "settings", "show"); out != "dns_domain: mesh.example\nlogin_expiration_seconds: 86400\n" {
		t.Fatalf("after update: %q", out)
	}
	if out := a.ok(t, "dns", "settings", "show"); out != "dns_domain: mesh.example\n" {
		t.Fatalf("dns settings show: %q", out)
	}
	a.ok(t, "settings", "update", "-f", writeFile(t, "s.yaml", "dns_domain: mesh.example\nlogin_expiration_seconds: 0\n"))
	var set struct {
		DNSDomain string `json:"dns_domain"`
		Seconds   int64  `json:"login_expiration_seconds"`
	}
	a.jsonOf(t, &set, "settings", "show")
	if set.DNSDomain != "mesh.example" || set.Seconds != 0 {
		t.Fatalf("after -f: %+v", set)
	}
	a.fails(t, 1, "server answered 400: login expiration 30s: want 0 (never) or between 1 minute and 10 years", "settings", "update", "--login-expiration", "30s")
	a.fails(t, 2, "--login-expiration: bad duration", "settings", "update", "--login-expiration", "-1h")
	a.fails(t, 2, "nothing to update", "settings", "update")
	a.fails(t, 2, "-f FILE gives the whole settings; drop --dns-domain", "settings", "update", "--dns-domain", "x.example", "-f", "x.yaml")
}
