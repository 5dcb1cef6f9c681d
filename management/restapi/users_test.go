package restapi

import (
	"reflect"
	"testing"

	"petrel/management/model"
)

// TestUsersAdmin: admins list, read, change and delete users; the service's
// rules come back as clear errors (own role, last owner) and change nothing.
func TestUsersAdmin(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.signIn("alice", model.RoleUser), e.signIn("bob", model.RoleOwner)
	e.userPeer(alice, "alice-laptop")

	var users []userView
	e.must("GET", "/api/users", nil, 200, &users)
	if len(users) != 2 || users[0].Email != alice.email || users[1].Role != "owner" {
		t.Fatalf("users: %+v", users)
	}
	if u := users[0]; u.Issuer != fakeIssuer || u.Subject != "sub-alice" || len(u.Peers) != 1 || u.Peers[0].Name != "alice-laptop" || u.CreatedAt == nil || u.LastLogin == nil {
		t.Fatalf("alice: %+v", u)
	}
	e.fails("GET", "/api/users/me", nil, 400, codeInvalid, "this is an admin token, which belongs to no user")
	e.fails("GET", "/api/users/nobody", nil, 404, codeNotFound, `user "nobody" not found`)
	e.fails("PATCH", "/api/users/"+alice.id, map[string]any{"role": "root"}, 400, codeInvalid, `role "root": want owner, admin or user`)
	e.fails("PATCH", "/api/users/"+alice.id, map[string]any{"email": "x@example.com"}, 400, codeInvalid, `"email" is read-only`)
	e.fails("PUT", "/api/users/"+alice.id, map[string]any{}, 400, codeInvalid, "nothing to update")
	// bob is the only owner: he stays one.
	e.fails("PATCH", "/api/users/"+bob.id, map[string]any{"role": "admin"}, 412, codePrecondition, "last owner")
	e.fails("DELETE", "/api/users/"+bob.id, nil, 412, codePrecondition, "last owner")
	// Nobody changes their own role or blocks themselves.
	e.failsAs(bob.token, "PATCH", "/api/users/me", map[string]any{"role": "user"}, 403, codePermission, "your own role")

	var u userView
	e.patch("/api/users/"+alice.id, map[string]any{"role": "admin"}, 200, &u)
	if u.Role != "admin" {
		t.Fatalf("role: %+v", u)
	}
	// An admin cannot make someone an owner (only owners can).
	carol := e.signIn("carol", model.RoleUser)
	e.failsAs(alice.token, "PATCH", "/api/users/"+carol.id, map[string]any{"role": "owner"}, 403, codePermission, "only an owner can make someone an owner")

	e.must("DELETE", "/api/users/"+alice.id, nil, 204, nil)
	snap := e.snapshot()
	if len(snap.Users) != 2 || len(snap.Peers) != 0 {
		t.Fatalf("after delete: %d users, %d peers", len(snap.Users), len(snap.Peers))
	}
	e.fails("DELETE", "/api/users/"+alice.id, nil, 404, codeNotFound, "not found")
}

// TestUserPutAcceptsGet: the GET body of a user is a valid PUT; the
// editable members apply; a changed read-only member is refused.
func TestUserPutAcceptsGet(t *testing.T) {
	e := newEnv(t)
	alice := e.signIn("alice", model.RoleUser)
	path := "/api/users/" + alice.id
	before := e.getMap(path)
	var got map[string]any
	e.must("PUT", path, before, 200, &got)
	if after := e.getMap(path); !mapsEqual(before, after) || !mapsEqual(got, after) {
		t.Fatalf("PUT of the GET body changed the user:\n%v\n%v", before, after)
	}
	for _, ro := range []string{"id", "email", "name", "issuer", "subject", "created_at"} {
		bad := clone(before)
		bad[ro] = "2001-01-01T00:00:00Z"
		e.fails("PUT", path, bad, 400, codeInvalid, `"`+ro+`" is read-only`)
	}
	live := clone(before)
	live["last_login"], live["groups"], live["peers"] = nil, []any{}, []any{map[string]any{"id": "x", "name": "y"}}
	delete(live, "last_login")
	e.must("PUT", path, live, 200, nil)
	edited := clone(before)
	edited["blocked"] = true
	e.must("PUT", path, edited, 200, &got)
	if got["blocked"] != true || !e.snapshot().Users[alice.id].Blocked {
		t.Fatalf("block not applied: %v", got)
	}
	bad := clone(before)
	bad["colour"] = "red"
	e.fails("PUT", path, bad, 400, codeInvalid, `unknown field "colour"`)
}

func mapsEqual(a, b map[string]any) bool { return reflect.DeepEqual(clone(a), clone(b)) }
