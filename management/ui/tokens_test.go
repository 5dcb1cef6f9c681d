package ui_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/html"

	"petrel/management/model"
	"petrel/management/ui"
)

// newToken is the plain token shown once on a creating page.
var newToken = regexp.MustCompile(`<code id="new-token">([^<]+)</code>`)

// syncBuffer is a bytes.Buffer safe for the handler's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTokensAdmin: the admin token lists, creates (shown once: in the
// creating response only, in no URL or log line) and deletes admin tokens
// after a confirmation; a deleted token stops working; hostile names are
// text; the account's last admin token is kept while no owner signs in.
func TestTokensAdmin(t *testing.T) {
	e := newEnv(t)
	// The dashboard with its log kept, at debug level.
	var logs syncBuffer
	mux := http.NewServeMux()
	mux.Handle("/ui/", ui.New(e.svc, ui.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: e.clock.Now}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	le := *e
	le.srv = srv
	b := le.browser()
	b.signIn(e.admin)

	r := b.get("/ui/tokens")
	r.want(t, 200, `href="/ui/tokens" class="active"`, `id="create-admin-token"`, "this session", `id="no-user"`)
	if n := strings.Count(r.body, `<tr id="admin-token-`); n != 1 {
		t.Fatalf("%d admin tokens listed, want the bootstrap one", n)
	}
	b.get("/ui/peers").want(t, 200, `href="/ui/tokens"`)

	// The last admin token, with no owner user to sign in instead, stays.
	var boot string
	for id := range e.snapshot().AdminTokens {
		boot = id
	}
	b.post("/ui/tokens/admin/"+boot+"/delete", url.Values{"confirm": {"yes"}}).want(t, 412, "last")
	if _, ok := e.svc.AuthenticateToken(e.admin); !ok {
		t.Fatal("the last admin token was deleted")
	}

	// Create: the token is shown once, as the response to the POST.
	probe := xss[0]
	r = b.post("/ui/tokens/admin", url.Values{"name": {probe}})
	r.want(t, 201, "shown only this once", html.EscapeString(probe))
	m := newToken.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no new token on the page:\n%s", r.body)
	}
	plain := m[1]
	if acct, ok := e.svc.AuthenticateToken(plain); !ok || acct != e.acct {
		t.Fatalf("the new token does not authenticate")
	}
	if strings.Contains(r.header.Get("Location"), plain) {
		t.Fatal("the token is in a URL")
	}
	var id string
	for tid, tk := range e.snapshot().AdminTokens {
		if tk.Name == probe {
			id = tid
		}
	}
	if id == "" || !strings.Contains(r.body, `id="admin-token-`+id+`"`) {
		t.Fatalf("the new token is not listed:\n%s", r.body)
	}
	list := b.get("/ui/tokens")
	list.want(t, 200, html.EscapeString(probe))
	if strings.Contains(list.body, plain) || strings.Contains(list.body, plain[len("ptok_"):]) {
		t.Fatal("the token is shown again")
	}

	// Refused input changes nothing.
	before := e.snapshot().AdminTokens
	b.post("/ui/tokens/admin", url.Values{"name": {"  "}}).want(t, 400, "name is required")
	b.post("/ui/tokens/admin", url.Values{"name": {strings.Repeat("x", 201)}}).want(t, 400, "longer than")
	b.post("/ui/tokens/admin/nope/delete", url.Values{"confirm": {"yes"}}).want(t, 404, "not found")
	b.post("/ui/tokens/access", url.Values{"name": {"mine"}}).want(t, 400, "belong to users")
	if after := e.snapshot().AdminTokens; !reflect.DeepEqual(before, after) || len(e.snapshot().AccessTokens) != 0 {
		t.Fatal("refused requests changed the tokens")
	}

	// Delete: a confirmation naming the token (as text), then it is gone
	// and stops working.
	confirm := b.post("/ui/tokens/admin/"+id+"/delete", nil)
	confirm.want(t, 200, "Delete admin token "+html.EscapeString(probe)+"?", `name="confirm" value="yes"`, "lose access at once")
	if strings.Contains(confirm.body, "You are signed in with it") {
		t.Fatal("the confirmation says this session uses the token")
	}
	if _, ok := e.svc.AuthenticateToken(plain); !ok {
		t.Fatal("deleted without confirmation")
	}
	if r := b.post("/ui/tokens/admin/"+id+"/delete", url.Values{"confirm": {"yes"}}); r.status != 303 || r.header.Get("Location") != "/ui/tokens" {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	b.get("/ui/tokens").want(t, 200, "Deleted admin token "+html.EscapeString(probe)+".")
	if _, ok := e.svc.AuthenticateToken(plain); ok {
		t.Fatal("a deleted token still authenticates")
	}
	if n := countEvents(t, e, "admin_token."); n != 2 {
		t.Fatalf("%d admin token events, want create and delete", n)
	}

	// Hostile names are text on every page that shows them; no page needs
	// an unsafe CSP.
	pages := map[string]string{"new": r.body, "list": list.body, "confirm": confirm.body}
	raw := regexp.MustCompile(`<img src=x|<script>alert|<svg onload`)
	for name, body := range pages {
		if m := raw.FindString(body); m != "" {
			t.Fatalf("%s renders %q unescaped", name, m)
		}
		checkNoUnsafeMarkup(t, name, body)
	}

	// Signed in with a second admin token, deleting it ends the session.
	r = b.post("/ui/tokens/admin", url.Values{"name": {"second"}})
	second := newToken.FindStringSubmatch(r.body)[1]
	b2 := le.browser()
	b2.signIn(second)
	var secondID string
	for tid, tk := range e.snapshot().AdminTokens {
		if tk.Name == "second" {
			secondID = tid
		}
	}
	b2.post("/ui/tokens/admin/"+secondID+"/delete", nil).want(t, 200, "You are signed in with it")
	if r := b2.post("/ui/tokens/admin/"+secondID+"/delete", url.Values{"confirm": {"yes"}}); r.status != 303 {
		t.Fatalf("delete own token: %d %s", r.status, r.body)
	}
	if r := b2.get("/ui/tokens"); r.status != 303 || !strings.Contains(r.header.Get("Location"), "reason=revoked") {
		t.Fatalf("session of a deleted token: %d %q", r.status, r.header.Get("Location"))
	}

	if l := logs.String(); strings.Contains(l, plain) || strings.Contains(l, second) || !strings.Contains(l, "component=ui") {
		t.Fatalf("a token is in the log (or nothing was logged):\n%s", l)
	}
}

func countEvents(t *testing.T, e *env, action string) int {
	t.Helper()
	ev, err := e.svc.ListEvents(e.ctx(), e.acct, model.EventFilter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return len(ev)
}

// TestTokensRoles: a user (role user) gets 403 on the page and every
// action; an admin (not an owner) sees the admin tokens but may not
// create or delete them (admin tokens have owner rights); an owner may;
// both manage their own access tokens, and no one else's.
func TestTokensRoles(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", model.RoleUser)
	bob := e.user("bob", model.RoleAdmin)
	carol := e.user("carol", model.RoleOwner)
	var boot string
	for id := range e.snapshot().AdminTokens {
		boot = id
	}
	var alicePAT string
	for id, tk := range e.snapshot().AccessTokens {
		if tk.UserID == alice.id {
			alicePAT = id
		}
	}

	ub := e.browser()
	ub.signIn(alice.pat)
	before := e.snapshot()
	ub.get("/ui/tokens").want(t, 403, "needs the admin role")
	for path, form := range map[string]url.Values{
		"/ui/tokens/admin":                          {"name": {"evil"}},
		"/ui/tokens/admin/" + boot + "/delete":      {"confirm": {"yes"}},
		"/ui/tokens/access":                         {"name": {"evil"}},
		"/ui/tokens/access/" + alicePAT + "/delete": {"confirm": {"yes"}},
	} {
		ub.post(path, form).want(t, 403, "needs the admin role")
	}
	if r := ub.get("/ui/peers"); strings.Contains(r.body, `href="/ui/tokens"`) {
		t.Fatal("the nav offers tokens to a user")
	}
	after := e.snapshot()
	if !reflect.DeepEqual(before.AdminTokens, after.AdminTokens) || !reflect.DeepEqual(before.AccessTokens, after.AccessTokens) {
		t.Fatal("a user's requests changed the tokens")
	}

	// An admin: the list, no create form, refused by the service.
	ab := e.browser()
	ab.signIn(bob.pat)
	r := ab.get("/ui/tokens")
	r.want(t, 200, `id="owner-only"`, `id="admin-token-`+boot+`"`, `id="access-tokens"`, "this session")
	if strings.Contains(r.body, `id="create-admin-token"`) || strings.Contains(r.body, `/ui/tokens/admin/`+boot+`/delete`) {
		t.Fatal("an admin is offered to create or delete admin tokens")
	}
	ab.post("/ui/tokens/admin", url.Values{"name": {"escalate"}}).want(t, 403, "only an owner")
	ab.post("/ui/tokens/admin/"+boot+"/delete", url.Values{"confirm": {"yes"}}).want(t, 403, "only an owner")
	if !reflect.DeepEqual(before.AdminTokens, e.snapshot().AdminTokens) {
		t.Fatal("an admin changed the admin tokens")
	}
	// Bob's own access tokens: create (shown once), list, delete; not
	// alice's.
	r = ab.post("/ui/tokens/access", url.Values{"name": {"cli " + xss[1]}, "expires_in": {"30d"}})
	r.want(t, 201, "New access token", html.EscapeString("cli "+xss[1]))
	pat := newToken.FindStringSubmatch(r.body)[1]
	p, err := e.svc.Authenticate(e.ctx(), pat)
	if err != nil || p.UserID != bob.id {
		t.Fatalf("the new access token: %+v %v", p, err)
	}
	if n := strings.Count(r.body, `<tr id="access-token-`); n != 2 {
		t.Fatalf("bob sees %d access tokens, want 2", n)
	}
	ab.post("/ui/tokens/access", url.Values{"name": {"x"}, "expires_in": {"soon"}}).want(t, 400, "expires in")
	ab.post("/ui/tokens/access/"+alicePAT+"/delete", url.Values{"confirm": {"yes"}}).want(t, 404, "not found")
	if e.snapshot().AccessTokens[alicePAT] == nil {
		t.Fatal("bob deleted alice's token")
	}
	var patID string
	for id, tk := range e.snapshot().AccessTokens {
		if tk.UserID == bob.id && strings.HasPrefix(tk.Name, "cli") {
			patID = id
		}
	}
	ab.post("/ui/tokens/access/"+patID+"/delete", nil).want(t, 200, "Delete access token cli", `name="confirm" value="yes"`)
	if r := ab.post("/ui/tokens/access/"+patID+"/delete", url.Values{"confirm": {"yes"}}); r.status != 303 {
		t.Fatalf("delete access token: %d %s", r.status, r.body)
	}
	if _, err := e.svc.Authenticate(e.ctx(), pat); err == nil {
		t.Fatal("a deleted access token still authenticates")
	}

	// An owner signed in as a user manages admin tokens; with an owner
	// who signs in, the last admin token may go.
	ob := e.browser()
	ob.signIn(carol.pat)
	ob.get("/ui/tokens").want(t, 200, `id="create-admin-token"`)
	if r := ob.post("/ui/tokens/admin/"+boot+"/delete", url.Values{"confirm": {"yes"}}); r.status != 303 {
		t.Fatalf("owner deletes the admin token: %d %s", r.status, r.body)
	}
	if _, ok := e.svc.AuthenticateToken(e.admin); ok {
		t.Fatal("the admin token still authenticates")
	}
}

// TestTokensCrossOrigin: creating or deleting a token from another
// origin is refused and changes nothing.
func TestTokensCrossOrigin(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	carol := e.user("carol", model.RoleOwner)
	cb := e.browser()
	cb.signIn(carol.pat)
	var boot, pat string
	for id := range e.snapshot().AdminTokens {
		boot = id
	}
	for id := range e.snapshot().AccessTokens {
		pat = id
	}
	before := e.snapshot()
	for _, hdr := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "http://evil.example"}} {
		for _, c := range []struct {
			b    *browser
			path string
		}{
			{b, "/ui/tokens/admin"}, {b, "/ui/tokens/admin/" + boot + "/delete"},
			{cb, "/ui/tokens/access"}, {cb, "/ui/tokens/access/" + pat + "/delete"},
		} {
			r := c.b.do("POST", c.path, url.Values{"name": {"evil"}, "confirm": {"yes"}}, hdr...)
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "cross-origin") {
				t.Fatalf("POST %s with %s: %d", c.path, hdr, r.status)
			}
		}
	}
	after := e.snapshot()
	if !reflect.DeepEqual(before.AdminTokens, after.AdminTokens) || !reflect.DeepEqual(before.AccessTokens, after.AccessTokens) {
		t.Fatal("a cross-origin POST changed the tokens")
	}
	// The same requests from the dashboard's origin pass.
	r := b.do("POST", "/ui/tokens/admin", url.Values{"name": {"ok"}}, "Sec-Fetch-Site", "same-origin", "Origin", e.srv.URL)
	r.want(t, 201, `id="new-token"`)
}

// TestTokensOfOtherUsers: an admin sees every other user's access tokens
// (owner's email, name as text) and revokes one after a confirmation
// page: it stops authenticating, the user's other token keeps working; an
// admin user may revoke another admin's token, not an owner's (the
// service's rule: nobody acts on a higher role).
func TestTokensOfOtherUsers(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", model.RoleUser)
	olga := e.user("olga", model.RoleOwner)
	adam := e.user("adam", model.RoleAdmin)
	ownerTok := ""
	for id, tok := range e.snapshot().AccessTokens {
		if tok.UserID == olga.id {
			ownerTok = id
		}
	}
	var aliceTok string
	for id, tok := range e.snapshot().AccessTokens {
		if tok.UserID == alice.id {
			aliceTok = id
		}
	}

	b := e.browser()
	b.signIn(e.admin)
	r := b.get("/ui/tokens")
	r.want(t, http.StatusOK, `id="user-tokens"`, "alice@example.com", `action="/ui/tokens/users/`+aliceTok+`/revoke"`)
	b.post("/ui/tokens/users/"+aliceTok+"/revoke", nil).want(t, http.StatusOK, "Revoke access token dashboard of alice@example.com?")
	if _, err := e.svc.Authenticate(e.ctx(), alice.pat); err != nil {
		t.Fatal("revoked before the confirmation")
	}
	if r := b.post("/ui/tokens/users/"+aliceTok+"/revoke", url.Values{"confirm": {"yes"}}); r.status != http.StatusSeeOther {
		t.Fatalf("confirmed revoke: %d\n%s", r.status, r.body)
	}
	if _, err := e.svc.Authenticate(e.ctx(), alice.pat); err == nil {
		t.Fatal("alice's revoked token still authenticates")
	}
	if _, err := e.svc.Authenticate(e.ctx(), olga.pat); err != nil {
		t.Fatalf("olga's token stopped working: %v", err)
	}

	// An admin user revokes another admin's token, not an owner's.
	bea := e.user("bea", model.RoleAdmin)
	beaTok := ""
	for id, tok := range e.snapshot().AccessTokens {
		if tok.UserID == bea.id {
			beaTok = id
		}
	}
	ab := e.browser()
	ab.signIn(adam.pat)
	if r := ab.post("/ui/tokens/users/"+beaTok+"/revoke", url.Values{"confirm": {"yes"}}); r.status != http.StatusSeeOther {
		t.Fatalf("an admin revoking another admin's token: %d\n%s", r.status, r.body)
	}
	if _, err := e.svc.Authenticate(e.ctx(), bea.pat); err == nil {
		t.Fatal("bea's revoked token still authenticates")
	}
	ab.post("/ui/tokens/users/"+ownerTok+"/revoke", url.Values{"confirm": {"yes"}}).want(t, http.StatusForbidden)
	if _, err := e.svc.Authenticate(e.ctx(), olga.pat); err != nil {
		t.Fatalf("an admin revoked the owner's token: %v", err)
	}
	// A user gets no such page at all.
	ub := e.browser()
	ub.signIn(e.user("uma", model.RoleUser).pat)
	ub.post("/ui/tokens/users/"+ownerTok+"/revoke", url.Values{"confirm": {"yes"}}).want(t, http.StatusForbidden)
}
