package ui_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"petrel/internal/keys"
	"petrel/management"
	"petrel/management/model"
	"petrel/management/ui"
)

// adminPages are every GET page an admin reaches.
var adminPages = []string{"/ui/peers", "/ui/setup-keys", "/ui/groups", "/ui/policies", "/ui/users", "/ui/events",
	"/ui/policies?src=a&dst=b&proto=tcp&port=22", "/ui/peers?q=x&status=offline", "/ui/matrix",
	"/ui/routes", "/ui/routes?q=x&kind=exit", "/ui/dns", "/ui/tokens"}

// TestSecurityHeaders: every response — pages, errors, the sign-in page,
// static files, redirects — carries the CSP and the other headers; pages
// are not cached.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	anon := e.browser()
	b := e.browser()
	b.signIn(e.admin)
	p, _ := e.addPeer(e.setupKey(), "gw")
	paths := append([]string{"/ui/peers/" + p.ID, "/ui/peers/nope", "/ui/nothing-here", "/ui/peers/rows"}, adminPages...)
	check := func(what string, r resp, cache string) {
		t.Helper()
		for k, v := range map[string]string{"Content-Security-Policy": ui.CSP, "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "Cache-Control": cache, "X-Frame-Options": "DENY"} {
			if got := r.header.Get(k); got != v {
				t.Fatalf("%s: %s = %q, want %q", what, k, got, v)
			}
		}
	}
	for _, path := range paths {
		check(path, b.get(path), "no-store")
	}
	check("login", anon.get("/ui/login"), "no-store")
	check("redirect", anon.get("/ui/peers"), "no-store")
	check("failed login", anon.post("/ui/login", url.Values{"token": {"wrong"}}), "no-store")
	check("static", anon.get("/ui/static/htmx.min.js"), "public, max-age=86400")
	if r := anon.get("/ui/static/"); r.status != 404 {
		t.Fatalf("static dir listing: status %d", r.status)
	}
	if !strings.Contains(ui.CSP, "script-src 'self';") || strings.Contains(ui.CSP, "unsafe") {
		t.Fatalf("CSP %q", ui.CSP)
	}
}

// TestNoInlineScriptOrStyle parses every page: no inline script, no style
// element or attribute, no on* handler attribute, no javascript: URL —
// everything the CSP would refuse — and scripts only from /ui/static/.
func TestNoInlineScriptOrStyle(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	key := e.setupKey()
	p, _ := e.addPeer(key, "gw")
	e.addPeer(key, "db")
	pages := map[string]string{"login": e.browser().get("/ui/login").body}
	for _, path := range append(adminPages, "/ui/peers/"+p.ID, "/ui/nothing") {
		pages[path] = b.get(path).body
	}
	pages["new key"] = b.post("/ui/setup-keys", url.Values{"name": {"k"}}).body
	pages["confirm"] = b.post("/ui/peers/delete", url.Values{"scope": {"selected"}, "id": {p.ID}}).body
	pages["rows"] = b.get("/ui/peers/rows").body
	for name, body := range pages {
		doc, err := html.Parse(strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var walk func(*html.Node)
		walk = func(n *html.Node) {
			if n.Type == html.ElementNode {
				if n.Data == "style" {
					t.Fatalf("%s: <style> element", name)
				}
				if n.Data == "script" {
					src := attr(n, "src")
					if !strings.HasPrefix(src, "/ui/static/") || n.FirstChild != nil {
						t.Fatalf("%s: inline or foreign script (src %q)", name, src)
					}
				}
				for _, a := range n.Attr {
					k := strings.ToLower(a.Key)
					if k == "style" || strings.HasPrefix(k, "on") || strings.HasPrefix(k, "hx-on") ||
						strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:") {
						t.Fatalf("%s: <%s %s=%q> would need an unsafe CSP", name, n.Data, a.Key, a.Val)
					}
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		walk(doc)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// TestSessionCookie: sign-in sets an HttpOnly, SameSite=Lax session cookie
// holding 256 random bits; the token is in no header, cookie or URL. Over
// TLS the cookie is __Host-petrel_session with Secure.
func TestSessionCookie(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := b.post("/ui/login", url.Values{"token": {e.admin}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign in: %d %s", r.status, r.body)
	}
	cookies := (&http.Response{Header: r.header}).Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v", cookies)
	}
	c := cookies[0]
	if c.Name != "petrel_session" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
		t.Fatalf("plain-http cookie %+v", c)
	}
	if raw, err := decodeB64(c.Value); err != nil || len(raw) != 32 {
		t.Fatalf("session ID %q is not 256 bits of base64url", c.Value)
	}
	for k, v := range r.header {
		if strings.Contains(strings.Join(v, " "), e.admin) {
			t.Fatalf("header %s carries the token", k)
		}
	}

	// With Options.TLS (the server terminates TLS) the cookie is the
	// __Host- one, Secure.
	mux := http.NewServeMux()
	mux.Handle("/ui/", ui.New(e.svc, ui.Options{TLS: true}))
	rec := newRecorder(mux, "POST", "/ui/login", url.Values{"token": {e.admin}})
	cs := rec.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != "__Host-petrel_session" || !cs[0].Secure || !cs[0].HttpOnly ||
		cs[0].SameSite != http.SameSiteLaxMode || cs[0].Path != "/" || cs[0].Domain != "" {
		t.Fatalf("TLS cookie %+v", cs)
	}
}

// TestSignInFailures: a wrong, empty or OpenID token opens no session and
// says why; a token in the URL is ignored.
func TestSignInFailures(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", model.RoleAdmin)
	b := e.browser()
	b.post("/ui/login", url.Values{"token": {"ptok_wrong"}}).want(t, 401, "token rejected")
	b.post("/ui/login", url.Values{"token": {""}}).want(t, 400, "enter an admin token")
	b.post("/ui/login", url.Values{"token": {alice.oidc}}).want(t, 401, "sign in with an admin token or a personal access token")
	if r := b.get("/ui/login?token=" + url.QueryEscape(e.admin)); strings.Contains(r.body, e.admin) {
		t.Fatal("the sign-in page echoes a token from the URL")
	}
	if r := b.get("/ui/peers"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/ui/login") {
		t.Fatalf("after failed sign-ins: %d %s", r.status, r.header.Get("Location"))
	}
	// An open redirect through next= is refused.
	r := b.post("/ui/login", url.Values{"token": {e.admin}, "next": {"//evil.example/x"}})
	if r.header.Get("Location") != "/ui/peers" {
		t.Fatalf("next=//evil.example: Location %q", r.header.Get("Location"))
	}
	r = b.post("/ui/login", url.Values{"token": {e.admin}, "next": {"/ui/groups?x=1"}})
	if r.header.Get("Location") != "/ui/groups?x=1" {
		t.Fatalf("next=/ui/groups: Location %q", r.header.Get("Location"))
	}
}

// TestSessionEndsWithToken: a revoked access token, a blocked user and a
// role change take effect on the next request of an open session.
func TestSessionEndsWithToken(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", model.RoleAdmin)
	bob := e.user("bob", model.RoleAdmin)
	a, b := e.browser(), e.browser()
	a.signIn(alice.pat)
	b.signIn(bob.pat)
	a.get("/ui/users").want(t, 200, "bob@example.com")

	// Revoke alice's token: her session ends at once.
	snap := e.snapshot()
	for id, tok := range snap.AccessTokens {
		if tok.UserID == alice.id {
			if err := e.svc.RevokeAccessToken(e.ctx(), e.acct, alice.id, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := a.get("/ui/peers")
	if r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "reason=revoked") {
		t.Fatalf("revoked token: %d %q", r.status, r.header.Get("Location"))
	}
	if r := a.get("/ui/peers"); r.status != http.StatusSeeOther {
		t.Fatalf("session still open after revocation: %d", r.status)
	}

	// Demote bob: admin pages are 403 at once; block him: signed out.
	role := model.RoleUser
	if _, err := e.svc.UpdateUser(e.ctx(), e.acct, bob.id, management.UserUpdate{Role: &role}); err != nil {
		t.Fatal(err)
	}
	b.get("/ui/users").want(t, 403, "needs the admin role")
	blocked := true
	if _, err := e.svc.UpdateUser(e.ctx(), e.acct, bob.id, management.UserUpdate{Blocked: &blocked}); err != nil {
		t.Fatal(err)
	}
	if r := b.get("/ui/peers"); r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "revoked") {
		t.Fatalf("blocked user: %d %q", r.status, r.header.Get("Location"))
	}
}

// TestSessionLifetime: idle 12 h and absolute 7 d; sign-out ends it.
func TestSessionLifetime(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	e.clock.advance(11 * time.Hour)
	b.get("/ui/peers").want(t, 200)
	e.clock.advance(11 * time.Hour) // 11 h since the last use
	b.get("/ui/peers").want(t, 200)
	e.clock.advance(12*time.Hour + time.Second)
	if r := b.get("/ui/peers"); r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "expired") {
		t.Fatalf("idle session: %d %q", r.status, r.header.Get("Location"))
	}

	b.signIn(e.admin)
	used := 0 * time.Hour
	for b.get("/ui/peers").status == 200 {
		if used > 8*24*time.Hour {
			t.Fatal("a session used every 11 hours outlives 8 days")
		}
		e.clock.advance(11 * time.Hour)
		used += 11 * time.Hour
	}
	if used < 7*24*time.Hour-11*time.Hour {
		t.Fatalf("a session used every 11 hours ended after %v, before 7 days", used)
	}

	b.signIn(e.admin)
	if r := b.post("/ui/logout", nil); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if r := b.get("/ui/peers"); r.status != http.StatusSeeOther {
		t.Fatalf("signed out but page served: %d", r.status)
	}
}

// TestCrossOriginRefused: a state-changing request from another origin
// (as a browser labels it) is refused and changes nothing, signed in or
// not.
func TestCrossOriginRefused(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	before := e.snapshot()
	for _, hdr := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "http://evil.example"}} {
		for _, path := range []string{"/ui/groups", "/ui/setup-keys", "/ui/login", "/ui/logout"} {
			r := b.do("POST", path, url.Values{"name": {"evil"}, "token": {e.admin}}, hdr...)
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "cross-origin") {
				t.Fatalf("POST %s with %s: %d", path, hdr, r.status)
			}
		}
	}
	if !reflect.DeepEqual(before.Groups, e.snapshot().Groups) || len(e.snapshot().SetupKeys) != len(before.SetupKeys) {
		t.Fatal("a cross-origin POST changed the account")
	}
	b.get("/ui/peers").want(t, 200) // still signed in
	// Same-origin requests from the dashboard pass.
	r := b.do("POST", "/ui/groups", url.Values{"name": {"ok"}}, "Sec-Fetch-Site", "same-origin", "Origin", e.srv.URL)
	if r.status != http.StatusSeeOther {
		t.Fatalf("same-origin POST: %d %s", r.status, r.body)
	}
}

// TestUserRole: a user's session lists only their own peers, opens only
// their own peer pages, deletes only their own peers, and gets 403 on
// every admin page and action.
func TestUserRole(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice", model.RoleUser), e.user("bob", model.RoleUser)
	mine, _ := e.userPeer(alice, "alice-laptop")
	theirs, _ := e.userPeer(bob, "bob-laptop")
	gw, _ := e.addPeer(e.setupKey(), "gateway")
	b := e.browser()
	b.signIn(alice.pat)
	r := b.get("/ui/peers")
	r.want(t, 200, "alice-laptop", "alice@example.com · user")
	for _, other := range []string{"bob-laptop", "gateway", "Setup keys"} {
		if strings.Contains(r.body, other) {
			t.Fatalf("alice's peers page shows %q", other)
		}
	}
	b.get("/ui/peers/"+mine.ID).want(t, 200, "alice-laptop")
	b.get("/ui/peers/"+theirs.ID).want(t, 404, "not found")
	b.get("/ui/peers/"+gw.ID).want(t, 404)
	for _, path := range []string{"/ui/setup-keys", "/ui/groups", "/ui/policies", "/ui/users", "/ui/events",
		"/ui/policies?src=alice-laptop&dst=gateway&proto=all"} {
		b.get(path).want(t, 403, "this page needs the admin role; you are signed in as alice@example.com (user)")
	}
	before := e.snapshot()
	for _, post := range []struct {
		path string
		form url.Values
	}{
		{"/ui/groups", url.Values{"name": {"mine"}}},
		{"/ui/setup-keys", url.Values{"name": {"mine"}}},
		{"/ui/users/" + bob.id + "/block", nil},
		{"/ui/peers/delete", url.Values{"scope": {"selected"}, "id": {theirs.ID}, "confirm": {"yes"}}},
		{"/ui/peers/delete", url.Values{"scope": {"selected"}, "id": {gw.ID}, "confirm": {"yes"}}},
	} {
		if r := b.post(post.path, post.form); r.status != 403 && r.status != 404 {
			t.Fatalf("POST %s as a user: %d", post.path, r.status)
		}
	}
	after := e.snapshot()
	if len(after.Peers) != len(before.Peers) || len(after.Groups) != len(before.Groups) ||
		len(after.SetupKeys) != len(before.SetupKeys) || after.Users[bob.id].Blocked {
		t.Fatal("a user's refused request changed the account")
	}
	// "Delete all matching" as a user takes only their own peers.
	r = b.post("/ui/peers/delete", url.Values{"scope": {"matching"}, "q": {"laptop"}})
	r.want(t, 200, "alice-laptop")
	if strings.Contains(r.body, "bob-laptop") {
		t.Fatal("confirmation lists another user's peer")
	}
	r = b.post("/ui/peers/delete", url.Values{"scope": {"selected"}, "id": {mine.ID}, "confirm": {"yes"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("delete own peer: %d %s", r.status, r.body)
	}
	if a := e.snapshot(); a.Peers[mine.ID] != nil || a.Peers[theirs.ID] == nil || a.Peers[gw.ID] == nil {
		t.Fatal("wrong peers deleted")
	}
}

// xss are hostile strings: markup, attribute breakouts, script URLs and
// control characters.
var xss = []string{`<img src=x onerror=alert(1)>`, `"><script>alert(2)</script>`, `javascript:alert(3)`,
	"ctl\x1b[31m\x00\u202eevil\u200b", `</textarea><svg onload=alert(4)>`}

// TestHostileNamesEscaped puts hostile peer names, group names, key names
// and DNS records into the account and checks every page renders them as
// text: the raw markup never appears, control characters are escaped.
func TestHostileNamesEscaped(t *testing.T) {
	e := newEnv(t)
	key := e.setupKey()
	var peerIDs []string
	for i, s := range xss {
		p, _ := e.addPeer(key, "p"+string(rune('a'+i)))
		cp := *p
		cp.Name = s
		if _, err := e.svc.Put(e.ctx(), e.acct, &cp); err != nil {
			if i == 0 {
				t.Fatalf("rename peer to %q: %v", s, err)
			}
			t.Logf("peer name %q refused by the service: %v", s, err)
		}
		peerIDs = append(peerIDs, p.ID)
		if _, err := e.svc.Put(e.ctx(), e.acct, &model.Group{Name: "g" + s, PeerIDs: []string{p.ID}}); err != nil {
			t.Logf("group named %q refused by the service: %v", s, err)
		}
		if _, _, err := e.svc.CreateSetupKey(e.ctx(), e.acct, management.SetupKeyInput{Name: "k" + s}); err != nil {
			t.Logf("setup key named %q refused: %v", s, err)
		}
	}
	// An agent reporting a control-character hostname.
	ctl, _ := e.addPeer(key, xss[3])
	peerIDs = append(peerIDs, ctl.ID)
	if _, err := e.svc.Put(e.ctx(), e.acct, &model.DNSZone{Domain: "zone.test", Records: []model.DNSRecord{
		{Name: "www", Type: "TXT", Value: xss[0], TTL: 60}}}); err != nil {
		t.Logf("DNS zone with a hostile TXT refused: %v", err)
	}
	b := e.browser()
	b.signIn(e.admin)
	pages := append([]string{}, adminPages...)
	for _, id := range peerIDs {
		pages = append(pages, "/ui/peers/"+id)
	}
	pages = append(pages, "/ui/peers?q="+url.QueryEscape(xss[0]), "/ui/policies?src="+url.QueryEscape(xss[1])+"&dst=x",
		"/ui/events?action="+url.QueryEscape(xss[0]))
	raw := regexp.MustCompile(`<img src=x|<script>alert|<svg onload|\x1b|\x00|\x{202e}`)
	sawEscaped := false
	for _, path := range pages {
		r := b.get(path)
		if m := raw.FindString(r.body); m != "" {
			t.Fatalf("%s renders %q unescaped", path, m)
		}
		sawEscaped = sawEscaped || strings.Contains(r.body, "&lt;img src=x onerror=alert(1)&gt;")
	}
	if !sawEscaped {
		t.Fatal("the hostile peer name is shown nowhere (test would prove nothing)")
	}
}

// TestBadInputChangesNothing: malformed forms and queries get a clear
// 4xx and leave the account as it was.
func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	before := e.snapshot()
	cases := []struct {
		method, path string
		form         url.Values
		status       int
		msg          string
	}{
		{"POST", "/ui/groups", url.Values{"name": {"  "}}, 400, "name is required"},
		{"POST", "/ui/groups/nope/delete", nil, 404, "not found"},
		{"POST", "/ui/setup-keys", url.Values{"name": {""}}, 400, "name is required"},
		{"POST", "/ui/setup-keys", url.Values{"name": {"k"}, "usage_limit": {"-1"}}, 400, "usage limit"},
		{"POST", "/ui/setup-keys", url.Values{"name": {"k"}, "usage_limit": {"5"}}, 400, "needs a reusable key"},
		{"POST", "/ui/setup-keys", url.Values{"name": {"k"}, "expires_in": {"soon"}}, 400, "expires in"},
		{"POST", "/ui/setup-keys", url.Values{"name": {"k"}, "auto_groups": {"nope"}}, 400, "group"},
		{"POST", "/ui/setup-keys/nope/revoke", nil, 404, "not found"},
		{"POST", "/ui/peers/delete", url.Values{"scope": {"selected"}}, 400, "no peers selected"},
		{"POST", "/ui/peers/delete", url.Values{"scope": {"everything"}}, 400, "scope"},
		{"POST", "/ui/peers/delete", url.Values{"scope": {"selected"}, "id": {"nope"}, "confirm": {"yes"}}, 404, "not found"},
		{"POST", "/ui/users/nope/block", nil, 404, "not found"},
		{"GET", "/ui/peers?status=sleeping", nil, 400, "status"},
		{"GET", "/ui/peers?page=0", nil, 400, "page"},
		{"GET", "/ui/peers?group=nope", nil, 400, "group"},
		{"GET", "/ui/events?kind=bogus", nil, 400, "kind"},
		{"GET", "/ui/events?before=x", nil, 400, "before"},
		{"GET", "/ui/policies?src=nope&dst=nope", nil, 400, "unknown peer"},
	}
	for _, c := range cases {
		r := b.do(c.method, c.path, c.form)
		if r.status != c.status || !strings.Contains(r.body, c.msg) {
			t.Fatalf("%s %s %v: %d, want %d with %q; body:\n%s", c.method, c.path, c.form, r.status, c.status, c.msg, r.body)
		}
	}
	after := e.snapshot()
	after.Version, before.Version = 0, 0
	if !reflect.DeepEqual(before, after) {
		t.Fatal("bad input changed the account")
	}
}

// TestSetupKeyShownOnce: the plain key is in the create response only.
func TestSetupKeyShownOnce(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	r := b.post("/ui/setup-keys", url.Values{"name": {"laptops"}, "reusable": {"on"}, "expires_in": {"7d"}})
	r.want(t, 201, "shown only this once", "laptops")
	m := regexp.MustCompile(`<code id="new-key">([^<]+)</code>`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no key in:\n%s", r.body)
	}
	// The key registers a peer.
	e.addPeer(m[1], "new-peer")
	for _, path := range append(adminPages, "/ui/setup-keys") {
		if strings.Contains(b.get(path).body, m[1]) {
			t.Fatalf("%s shows the setup key again", path)
		}
	}
	var id string
	for _, k := range e.snapshot().SetupKeys {
		if k.Name == "laptops" {
			id = k.ID
		}
	}
	if r := b.post("/ui/setup-keys/"+id+"/revoke", nil); r.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.status)
	}
	b.get("/ui/setup-keys").want(t, 200, "Revoked setup key laptops.", "revoked")
	if !e.snapshot().SetupKeys[id].Revoked {
		t.Fatal("key not revoked")
	}
}

// TestPeersPage: search, status and group filters, paging, detail and
// bulk delete of the filtered set after a confirmation.
func TestPeersPage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	key := e.setupKey()
	var ids []string
	var web keysPrivate
	for i := range 60 {
		p, k := e.addPeer(key, "node-"+pad(i))
		ids = append(ids, p.ID)
		if i == 7 {
			web = keysPrivate{p, k}
		}
	}
	g, err := e.svc.Put(e.ctx(), e.acct, &model.Group{Name: "web", PeerIDs: ids[:3]})
	if err != nil {
		t.Fatal(err)
	}
	r := b.get("/ui/peers")
	r.want(t, 200, ">60<", "Page 1 of 2", "node-00", "node-49")
	if strings.Contains(r.body, "node-50") {
		t.Fatal("page 1 shows more than 50 peers")
	}
	b.get("/ui/peers?page=2").want(t, 200, "node-50", "node-59", "Page 2 of 2")
	r = b.get("/ui/peers?q=node-1")
	r.want(t, 200, "node-10", "node-19")
	if strings.Contains(r.body, "node-20") {
		t.Fatal("search matched node-20")
	}
	b.get("/ui/peers?q="+url.QueryEscape(e.snapshot().Peers[ids[5]].IP.String())).want(t, 200, "node-05")
	b.get("/ui/peers?group="+g.ObjectID()).want(t, 200, ">3<")

	stop := e.connect(web.k)
	r = b.get("/ui/peers?status=connected")
	r.want(t, 200, ">1<", "node-07", "connected")
	b.get("/ui/peers/"+web.p.ID).want(t, 200, "node-07", web.p.IP.String(), ".petrel.internal", "linux", "connected")
	stop()
	b.get("/ui/peers?status=connected").want(t, 200, ">0<", "No peer matches")

	// Bulk delete of the filtered set: confirmation first, nothing gone yet.
	r = b.post("/ui/peers/delete", url.Values{"scope": {"matching"}, "q": {"node-1"}})
	r.want(t, 200, "Delete 10 peer(s)?", "node-10", "node-19")
	if n := len(e.snapshot().Peers); n != 60 {
		t.Fatalf("confirmation deleted peers: %d left", n)
	}
	form := url.Values{"scope": {"selected"}, "confirm": {"yes"}}
	for _, m := range regexp.MustCompile(`name="id" value="([^"]+)"`).FindAllStringSubmatch(r.body, -1) {
		form.Add("id", m[1])
	}
	if r := b.post("/ui/peers/delete", form); r.status != http.StatusSeeOther {
		t.Fatalf("bulk delete: %d %s", r.status, r.body)
	}
	b.get("/ui/peers").want(t, 200, "Deleted 10 peer(s).", ">50<")
	for _, p := range e.snapshot().Peers {
		if strings.HasPrefix(p.Name, "node-1") {
			t.Fatalf("%s survived the bulk delete", p.Name)
		}
	}
}

type keysPrivate struct {
	p *model.Peer
	k keys.Private
}

func decodeB64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func newRecorder(h http.Handler, method, path string, form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func pad(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

// TestGroupsAndSimulator: create and delete groups; the simulator shows
// the service's verdict and the deciding rule.
func TestGroupsAndSimulator(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	key := e.setupKey()
	src, _ := e.addPeer(key, "laptop")
	dst, _ := e.addPeer(key, "server")
	if r := b.post("/ui/groups", url.Values{"name": {"servers"}}); r.status != http.StatusSeeOther {
		t.Fatalf("create group: %d %s", r.status, r.body)
	}
	b.get("/ui/groups").want(t, 200, "Created group servers.", "servers")
	b.post("/ui/groups", url.Values{"name": {"servers"}}).want(t, 409)
	var gid string
	for _, g := range e.snapshot().Groups {
		if g.Name == "servers" {
			gid = g.ID
		}
	}
	if r := b.post("/ui/groups/"+gid+"/delete", nil); r.status != http.StatusSeeOther {
		t.Fatalf("delete group: %d", r.status)
	}
	if e.snapshot().Groups[gid] != nil {
		t.Fatal("group not deleted")
	}

	all := ""
	for _, g := range e.snapshot().Groups {
		if g.Name == model.AllGroupName {
			all = g.ID
		}
	}
	if _, err := e.svc.Put(e.ctx(), e.acct, &model.Policy{Name: "default", Enabled: true, Rules: []model.PolicyRule{{
		Name: "everyone", Sources: []string{all}, Destinations: []string{all}, Bidirectional: true, Protocol: model.ProtoAll,
		Action: model.ActionAccept}}}); err != nil {
		t.Fatal(err)
	}
	r := b.get("/ui/policies?src=laptop&dst=" + url.QueryEscape(dst.IP.String()) + "&proto=tcp&port=22")
	r.want(t, 200, "Allowed", "laptop → server", `Deciding rule: <span id="deciding-rule">everyone</span> of policy <span id="deciding-policy">default</span>`)
	v, err := e.svc.CheckPolicy(e.acct, src.ID, dst.ID, model.ProtoTCP, 22)
	if err != nil || !v.Allowed {
		t.Fatalf("service verdict %+v %v", v, err)
	}
	if !strings.Contains(r.body, strings.ReplaceAll(v.Reason, `"`, "&#34;")) {
		t.Fatalf("page lacks the service's reason %q", v.Reason)
	}
	for _, p := range e.snapshot().Policies {
		if err := e.svc.Delete(e.ctx(), e.acct, model.KindPolicy, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	b.get("/ui/policies?src=laptop&dst=server&proto=udp&port=53").want(t, 200, "Denied", "default is to deny", "No policies")
	b.get("/ui/policies?src=laptop&dst=server&proto=tcp").want(t, 400, "port")
	b.get("/ui/policies?src=laptop&dst=server&proto=icmp&port=3").want(t, 400, "only meaningful")
}

// TestUsersAndEvents: block and unblock a user; the audit page pages and
// filters.
func TestUsersAndEvents(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", model.RoleUser)
	b := e.browser()
	b.signIn(e.admin)
	if r := b.post("/ui/users/"+alice.id+"/block", nil); r.status != http.StatusSeeOther {
		t.Fatalf("block: %d %s", r.status, r.body)
	}
	b.get("/ui/users").want(t, 200, "Blocked alice@example.com.", "blocked", "Unblock")
	if !e.snapshot().Users[alice.id].Blocked {
		t.Fatal("not blocked")
	}
	if r := b.post("/ui/users/"+alice.id+"/unblock", nil); r.status != http.StatusSeeOther {
		t.Fatalf("unblock: %d", r.status)
	}
	for i := range 60 {
		if _, err := e.svc.Put(e.ctx(), e.acct, &model.Group{Name: "g" + pad(i)}); err != nil {
			t.Fatal(err)
		}
	}
	rows := regexp.MustCompile(`<td class="mono">group.create</td>`)
	r := b.get("/ui/events?action=group.create")
	r.want(t, 200, "Older")
	if n := len(rows.FindAllString(r.body, -1)); n != 50 {
		t.Fatalf("first page: %d group.create events, want 50", n)
	}
	m := regexp.MustCompile(`href="(/ui/events\?[^"]*before=[^"]+)"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatal("no link to older events")
	}
	r = b.get(html.UnescapeString(m[1]))
	r.want(t, 200, "Newest")
	if n := len(rows.FindAllString(r.body, -1)); n != 10 {
		t.Fatalf("second page: %d group.create events, want 10", n)
	}
	b.get("/ui/events?kind=user").want(t, 200, "user.block", "user.unblock", "admin-token:")
}

// TestVendoredScripts: the vendored files are the ones NOTICE.md names.
func TestVendoredScripts(t *testing.T) {
	notice, err := os.ReadFile("static/NOTICE.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"htmx.min.js", "sse.min.js"} {
		b, err := os.ReadFile("static/" + f)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if !strings.Contains(string(notice), "| "+f+" |") || !strings.Contains(string(notice), hex.EncodeToString(sum[:])) {
			t.Fatalf("%s (sha256 %x) is not the file NOTICE.md records", f, sum)
		}
	}
}
