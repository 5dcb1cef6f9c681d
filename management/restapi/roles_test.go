package restapi

import (
	"encoding/json"
	"strings"
	"testing"

	"petrel/management/model"
)

// TestUserSeesOnlyOwnPeers: a user lists only the peers they registered;
// another user's peer and a setup-key peer are a 403 for GET, PUT, PATCH
// and DELETE (by id and by name) and stay unchanged; their own peer can be
// read, renamed and deleted. The admin token sees every peer.
func TestUserSeesOnlyOwnPeers(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.signIn("alice", model.RoleUser), e.signIn("bob", model.RoleUser)
	mine := e.userPeer(alice, "alice-laptop")
	theirs := e.userPeer(bob, "bob-laptop")
	gw := e.addPeer(e.setupKey(), "gw")

	var list []peerView
	e.as(alice.token, "GET", "/api/peers", nil, 200, &list)
	if len(list) != 1 || list[0].ID != mine.ID || list[0].UserID != alice.id || list[0].User != alice.email {
		t.Fatalf("alice lists %+v, want only her peer %s", list, mine.ID)
	}
	e.must("GET", "/api/peers", nil, 200, &list)
	if len(list) != 3 {
		t.Fatalf("admin lists %d peers, want 3", len(list))
	}

	const msg = "peer belongs to another user"
	for _, ref := range []string{theirs.ID, "bob-laptop", theirs.IP.String(), gw.ID, "gw"} {
		path := "/api/peers/" + ref
		e.failsAs(alice.token, "GET", path, nil, 403, codePermission, msg)
		e.failsAs(alice.token, "PUT", path, map[string]any{"name": "mine-now"}, 403, codePermission, msg)
		e.failsAs(alice.token, "PATCH", path, map[string]any{"name": "mine-now"}, 403, codePermission, msg)
		e.failsAs(alice.token, "DELETE", path, nil, 403, codePermission, msg)
	}
	// A peer that does not exist is still a 404.
	e.failsAs(alice.token, "GET", "/api/peers/nobody", nil, 404, codeNotFound, "nobody")

	var v peerView
	e.as(alice.token, "GET", "/api/peers/alice-laptop", nil, 200, &v)
	e.as(alice.token, "PATCH", "/api/peers/"+mine.ID, map[string]any{"name": "Alice's laptop"}, 200, &v)
	if v.Name != "Alice's laptop" {
		t.Fatalf("rename: %+v", v)
	}
	full := e.getMap("/api/peers/" + mine.ID)
	full["dns_label"] = "alice"
	e.as(alice.token, "PUT", "/api/peers/"+mine.ID, full, 200, &v)
	e.as(alice.token, "DELETE", "/api/peers/"+mine.ID, nil, 204, nil)
	if _, ok := e.snapshot().Peers[mine.ID]; ok {
		t.Fatal("own peer not deleted")
	}
	if _, ok := e.snapshot().Peers[theirs.ID]; !ok {
		t.Fatal("bob's peer gone")
	}
}

// routePath fills a route's path parameters for a request.
func routePath(rt route, id string) string {
	p := strings.ReplaceAll(rt.path, "{id}", id)
	return strings.ReplaceAll(p, "{tokenId}", "zz-none")
}

// TestUserRoleOnlySelfRoutes walks the whole route table as a user: every
// admin-scoped route is a 403 naming the role (and changes nothing); the
// self routes are not refused for the role. An admin user reaches every
// route.
func TestUserRoleOnlySelfRoutes(t *testing.T) {
	e := newEnv(t)
	alice := e.signIn("alice", model.RoleUser)
	olga := e.signIn("olga", model.RoleAdmin)
	e.userPeer(alice, "alice-laptop")
	const needs = "this needs the admin role; you are signed in as alice@example.com (user)"
	admin := 0
	for _, rt := range routes {
		if rt.public {
			continue
		}
		for _, id := range []string{"zz-none", "me"} {
			path := routePath(rt, id)
			st, b := e.doToken(alice.token, rt.method, path, `{}`)
			var eb errorBody
			_ = json.Unmarshal(b, &eb)
			refused := st == 403 && eb.Code == codePermission && strings.Contains(eb.Error, needs)
			switch {
			case rt.scope == scopeAdmin && !refused:
				t.Errorf("%s %s as a user: %d %s, want 403 %q", rt.method, path, st, b, needs)
			case rt.scope == scopeSelf && refused && id == "me":
				t.Errorf("%s %s as a user: refused for the role: %s", rt.method, path, b)
			}
			st, b = e.doToken(olga.token, rt.method, path, `{}`)
			if st == 403 && strings.Contains(string(b), "needs the admin role") {
				t.Errorf("%s %s as an admin: %s", rt.method, path, b)
			}
		}
		if rt.scope == scopeAdmin {
			admin++
		}
	}
	if admin < 40 {
		t.Fatalf("only %d admin routes walked", admin)
	}
	// A user names only themselves in /api/users/{id}.
	e.failsAs(alice.token, "GET", "/api/users/"+olga.id, nil, 403, codePermission, needs)
	e.failsAs(alice.token, "GET", "/api/users/"+olga.id+"/tokens", nil, 403, codePermission, needs)
	e.failsAs(alice.token, "POST", "/api/users/"+olga.id+"/tokens", map[string]any{"name": "x"}, 403, codePermission, needs)
	var u userView
	e.as(alice.token, "GET", "/api/users/"+alice.id, nil, 200, &u)
	e.as(alice.token, "GET", "/api/users/me", nil, 200, &u)
	if u.ID != alice.id || u.Role != "user" || len(u.Peers) != 1 {
		t.Fatalf("me: %+v", u)
	}
}

// TestAuthFailures: a blocked user is a 403 (their PAT and OpenID token
// alike), an unreachable provider a 503, an unknown OpenID token a 401.
func TestAuthFailures(t *testing.T) {
	e := newEnv(t)
	alice := e.signIn("alice", model.RoleUser)
	pat := e.pat(alice, "laptop", nil)
	e.as(pat, "GET", "/api/users/me", nil, 200, nil)
	e.patch("/api/users/"+alice.id, map[string]any{"blocked": true}, 200, nil)
	for _, tok := range []string{pat, alice.token} {
		e.failsAs(tok, "GET", "/api/users/me", nil, 403, codePermission, "user alice@example.com is blocked by an administrator")
	}
	e.patch("/api/users/"+alice.id, map[string]any{"blocked": false}, 200, nil)
	e.as(pat, "GET", "/api/peers", nil, 200, nil)

	e.failsAs("oidc.nobody.sig", "GET", "/api/peers", nil, 401, codeUnauthenticated, "access token refused")
	e.idp.setDown(true)
	e.failsAs(alice.token, "GET", "/api/peers", nil, 503, codeUnavailable, "identity provider is unavailable")
	e.idp.setDown(false)
	// PATs and the admin token do not need the provider.
	e.as(pat, "GET", "/api/peers", nil, 200, nil)
}
