package restapi

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"petrel/management/model"
)

// TestAccessTokenLifecycle: a PAT is shown once (the create response) and
// never again (lists hold neither the secret nor its hash); it works; a
// revoked PAT stops working at once; an expired one is a 401.
func TestAccessTokenLifecycle(t *testing.T) {
	e := newEnv(t)
	alice := e.signIn("alice", model.RoleUser)
	e.userPeer(alice, "alice-laptop")

	var created tokenView
	e.as(alice.token, "POST", "/api/users/me/tokens", map[string]any{"name": "ci", "expires_in": 3600}, 201, &created)
	if !strings.HasPrefix(created.Token, "ppat_") || created.Prefix == "" || !strings.HasPrefix(created.Token, created.Prefix) ||
		created.ExpiresAt == nil || created.UserID != alice.id {
		t.Fatalf("created: %+v", created)
	}
	hash := e.snapshot().AccessTokens[created.ID].TokenHash
	for _, tok := range []string{alice.token, created.Token, e.token} {
		for _, path := range []string{"/api/users/me/tokens", "/api/users/" + alice.id + "/tokens"} {
			if tok == e.token && strings.Contains(path, "/me/") {
				continue
			}
			var list []tokenView
			raw := e.as(tok, "GET", path, nil, 200, &list)
			if len(list) != 1 || list[0].ID != created.ID || list[0].Token != "" {
				t.Fatalf("GET %s: %+v", path, list)
			}
			if bytes.Contains(raw, []byte(created.Token)) || bytes.Contains(raw, []byte(created.Token[len(created.Prefix):])) ||
				strings.Contains(strings.ToLower(string(raw)), "hash") || len(hash) == 0 {
				t.Fatalf("GET %s shows the secret or its hash: %s", path, raw)
			}
		}
	}

	// The PAT acts as alice with her role.
	var me userView
	e.as(created.Token, "GET", "/api/users/me", nil, 200, &me)
	if me.ID != alice.id {
		t.Fatalf("PAT is %+v", me)
	}
	e.failsAs(created.Token, "GET", "/api/groups", nil, 403, codePermission, "needs the admin role")

	// Revoked: the next request is refused.
	e.as(created.Token, "DELETE", "/api/users/me/tokens/"+created.ID, nil, 204, nil)
	e.failsAs(created.Token, "GET", "/api/users/me", nil, 401, codeUnauthenticated, "access token rejected (unknown or revoked)")
	e.failsAs(alice.token, "DELETE", "/api/users/me/tokens/"+created.ID, nil, 404, codeNotFound, "not found")

	// Expired: a 401 naming the expiry.
	short := e.pat(alice, "short", "2m")
	e.as(short, "GET", "/api/peers", nil, 200, nil)
	e.clock.advance(3 * time.Minute)
	e.failsAs(short, "GET", "/api/peers", nil, 401, codeUnauthenticated, `access token "short" expired at`)
	var list []tokenView
	e.as(alice.token, "GET", "/api/users/me/tokens", nil, 200, &list)
	if len(list) != 1 || !list[0].Expired {
		t.Fatalf("expired token listed as %+v", list)
	}
}

// TestAccessTokenRules: bad bodies are 400s; users reach only their own
// tokens; admins may mint tokens only for roles not above theirs; the
// admin token has no "me".
func TestAccessTokenRules(t *testing.T) {
	e := newEnv(t)
	alice, olga, otto := e.signIn("alice", model.RoleUser), e.signIn("olga", model.RoleAdmin), e.signIn("otto", model.RoleOwner)
	for _, c := range []struct {
		body any
		msg  string
	}{
		{map[string]any{}, "name is required"},
		{map[string]any{"name": "x", "expires_in": -1}, "expires_in -1"},
		{map[string]any{"name": "x", "expires_in": 1.5}, "expires_in must be whole seconds"},
		{map[string]any{"name": "x", "expires_in": "soon"}, `bad duration "soon"`},
		{map[string]any{"name": "x", "expires_in": 1 << 40}, "ten years"},
		{map[string]any{"name": "x", "hash": "x"}, `unknown field "hash"`},
	} {
		e.failsAs(alice.token, "POST", "/api/users/me/tokens", c.body, 400, codeInvalid, c.msg)
	}
	e.fails("POST", "/api/users/me/tokens", map[string]any{"name": "x"}, 400, codeInvalid, "admin token, which belongs to no user")

	// The admin token (owner rights) and admins mint for users; an admin
	// cannot mint an owner's token.
	var v tokenView
	e.must("POST", "/api/users/"+alice.id+"/tokens", map[string]any{"name": "by-admin-token"}, 201, &v)
	e.as(olga.token, "POST", "/api/users/"+alice.id+"/tokens", map[string]any{"name": "by-olga"}, 201, &v)
	e.failsAs(olga.token, "POST", "/api/users/"+otto.id+"/tokens", map[string]any{"name": "escalate"}, 403, codePermission, "cannot create one for otto@example.com (owner)")
	e.as(otto.token, "POST", "/api/users/"+olga.id+"/tokens", map[string]any{"name": "by-otto"}, 201, &v)
	// Admins may list and revoke anyone's.
	e.as(olga.token, "DELETE", "/api/users/"+alice.id+"/tokens/"+v.ID, nil, 404, nil) // v is olga's, not alice's
	e.as(olga.token, "DELETE", "/api/users/"+olga.id+"/tokens/"+v.ID, nil, 204, nil)
	// Users never reach another's.
	e.failsAs(alice.token, "DELETE", "/api/users/"+olga.id+"/tokens/zz", nil, 403, codePermission, "needs the admin role")
}
