package ui_test

import (
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/net/html"

	"petrel/management/model"
)

// allGroup returns the ID of the account's All group.
func (e *env) allGroup() string {
	e.t.Helper()
	for _, g := range e.snapshot().Groups {
		if g.Name == model.AllGroupName {
			return g.ID
		}
	}
	e.t.Fatal("no All group")
	return ""
}

// routesDNSFixture fills the account with a route, an exit node, a
// nameserver group and a zone; it returns their IDs.
type rdFixture struct{ route, exit, ns, zone, peer string }

func routesDNSFixture(t *testing.T, e *env, desc string) rdFixture {
	t.Helper()
	key := e.setupKey()
	gw, _ := e.addPeer(key, "gw-a")
	all := e.allGroup()
	put := func(o model.Object) string {
		t.Helper()
		obj, err := e.svc.Put(e.ctx(), e.acct, o)
		if err != nil {
			t.Fatalf("put %T: %v", o, err)
		}
		return obj.ObjectID()
	}
	// Descriptions with control characters are refused by the service;
	// the markup probes stay, and the network ID and the TXT record keep
	// the control characters.
	text := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, desc)
	return rdFixture{
		peer: gw.ID,
		route: put(&model.Route{Network: netip.MustParsePrefix("10.20.0.0/24"), Description: text, Peer: gw.ID,
			Groups: []string{all}, Enabled: true, NetworkID: "lan" + desc}),
		exit: put(&model.Route{Network: netip.MustParsePrefix("0.0.0.0/0"), PeerGroups: []string{all}, Groups: []string{all},
			Enabled: true, Metric: 10}),
		ns: put(&model.NameserverGroup{Name: "corp", Description: text, Nameservers: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.53:53")},
			Domains: []string{"corp.example.com"}, Groups: []string{all}, Enabled: true}),
		zone: put(&model.DNSZone{Domain: "zone.test", Records: []model.DNSRecord{{Name: "www", Type: "TXT", Value: "t" + desc, TTL: 60},
			{Name: "db", Type: "A", Value: "10.1.2.3"}}}),
	}
}

// rdPages are the GET pages of routes and DNS for fixture f.
func rdPages(f rdFixture) []string {
	return []string{"/ui/routes", "/ui/routes?kind=exit", "/ui/routes?q=gw&health=down&state=enabled", "/ui/routes/" + f.route,
		"/ui/dns", "/ui/dns/nameservers/" + f.ns}
}

// TestRoutesDNSAdminOnly: a user (role user) gets 403 on every page and
// action of routes and DNS, and nothing changes; the nav hides them.
func TestRoutesDNSAdminOnly(t *testing.T) {
	e := newEnv(t)
	f := routesDNSFixture(t, e, "d")
	alice := e.user("alice", model.RoleUser)
	b := e.browser()
	b.signIn(alice.pat)
	before := e.snapshot()
	all := e.allGroup()
	posts := map[string]url.Values{
		"/ui/routes":                                  {"network": {"10.9.0.0/24"}, "peer": {f.peer}, "groups": {all}, "enabled": {"on"}},
		"/ui/routes/" + f.route:                       {"network": {"10.9.0.0/24"}, "peer": {f.peer}, "groups": {all}},
		"/ui/routes/" + f.route + "/delete":           {"confirm": {"yes"}},
		"/ui/dns/settings":                            {"dns_domain": {"evil.test"}},
		"/ui/dns/nameservers":                         {"name": {"x"}, "nameservers": {"1.1.1.1"}, "primary": {"on"}, "groups": {all}},
		"/ui/dns/nameservers/" + f.ns:                 {"name": {"x"}, "nameservers": {"1.1.1.1"}, "primary": {"on"}, "groups": {all}},
		"/ui/dns/nameservers/" + f.ns + "/delete":     {"confirm": {"yes"}},
		"/ui/dns/zones":                               {"domain": {"evil.test"}},
		"/ui/dns/zones/" + f.zone + "/delete":         {"confirm": {"yes"}},
		"/ui/dns/zones/" + f.zone + "/records":        {"name": {"x"}, "type": {"A"}, "value": {"10.0.0.1"}},
		"/ui/dns/zones/" + f.zone + "/records/delete": {"index": {"0"}, "confirm": {"yes"}},
	}
	for _, path := range rdPages(f) {
		b.get(path).want(t, 403, "needs the admin role")
	}
	for path, form := range posts {
		r := b.post(path, form)
		if r.status != 403 || !strings.Contains(r.body, "needs the admin role") {
			t.Fatalf("user POST %s: status %d; body:\n%s", path, r.status, r.body)
		}
	}
	if after := e.snapshot(); !reflect.DeepEqual(before.Routes, after.Routes) || !reflect.DeepEqual(before.NameserverGroups, after.NameserverGroups) ||
		!reflect.DeepEqual(before.DNSZones, after.DNSZones) || before.Settings != after.Settings {
		t.Fatal("a user's requests changed routes or DNS")
	}
	if r := b.get("/ui/peers"); strings.Contains(r.body, `href="/ui/routes"`) || strings.Contains(r.body, `href="/ui/dns"`) {
		t.Fatal("the nav offers routes or DNS to a user")
	}
	// An admin user reaches them.
	bob := e.user("bob", model.RoleAdmin)
	ab := e.browser()
	ab.signIn(bob.pat)
	for _, path := range rdPages(f) {
		ab.get(path).want(t, 200)
	}
}

// TestRoutesDNSEscaped: hostile route descriptions and network IDs,
// nameserver group descriptions and zone records are shown as text on
// every routes and DNS page and confirmation: no raw markup, control and
// format characters escaped; and no page needs an unsafe CSP.
func TestRoutesDNSEscaped(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	f := routesDNSFixture(t, e, strings.Join(xss, " "))
	raw := regexp.MustCompile(`<img src=x|<script>alert|<svg onload|\x1b|\x00|\x{202e}|\x{200b}`)
	pages := map[string]string{}
	for _, path := range rdPages(f) {
		r := b.get(path)
		r.want(t, 200)
		pages[path] = r.body
	}
	pages["confirm route"] = b.post("/ui/routes/"+f.route+"/delete", nil).body
	pages["confirm ns"] = b.post("/ui/dns/nameservers/"+f.ns+"/delete", nil).body
	pages["confirm zone"] = b.post("/ui/dns/zones/"+f.zone+"/delete", nil).body
	sum := regexp.MustCompile(`name="sum" value="([0-9a-f]+)"`).FindStringSubmatch(pages["/ui/dns"])
	if sum == nil {
		t.Fatal("no record delete form")
	}
	pages["confirm record"] = b.post("/ui/dns/zones/"+f.zone+"/records/delete", url.Values{"index": {"0"}, "sum": {sum[1]}}).body
	if !strings.Contains(pages["confirm record"], "Delete a record") || len(e.snapshot().DNSZones[f.zone].Records) != 2 {
		t.Fatalf("record confirmation:\n%s", pages["confirm record"])
	}
	for name, body := range pages {
		if m := raw.FindString(body); m != "" {
			t.Fatalf("%s renders %q unescaped", name, m)
		}
		checkNoUnsafeMarkup(t, name, body)
	}
	// The probes are shown, as text, where they belong (else the test
	// would prove nothing).
	shown := html.EscapeString(xss[0])
	ctl := `ctl\x1b[31m\x00\u+202Eevil\u+200B` // as text, after the page's HTML escaping is undone
	for _, name := range []string{"/ui/routes", "/ui/routes/" + f.route, "/ui/dns", "/ui/dns/nameservers/" + f.ns,
		"confirm route", "confirm record"} {
		if !strings.Contains(pages[name], shown) {
			t.Fatalf("%s does not show the markup probe as text:\n%s", name, pages[name])
		}
	}
	// Control characters: in the network ID and the TXT record (the
	// service refuses them in descriptions).
	for _, name := range []string{"/ui/routes", "/ui/dns", "confirm record"} {
		if !strings.Contains(html.UnescapeString(pages[name]), ctl) {
			t.Fatalf("%s does not show the control-character probe as text:\n%s", name, pages[name])
		}
	}
	if n := strings.Count(pages["/ui/dns"], shown); n < 2 {
		t.Fatalf("the DNS page shows the probe %d time(s), want the nameserver group description and the TXT record", n)
	}
}

// checkNoUnsafeMarkup fails on inline script, style and on* handlers.
func checkNoUnsafeMarkup(t *testing.T, name, body string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			if n.Data == "style" || n.Data == "img" || n.Data == "svg" || n.Data == "script" && (!strings.HasPrefix(attr(n, "src"), "/ui/static/") || n.FirstChild != nil) {
				t.Fatalf("%s: <%s> element from data or inline", name, n.Data)
			}
			for _, a := range n.Attr {
				k := strings.ToLower(a.Key)
				if k == "style" || strings.HasPrefix(k, "on") || strings.HasPrefix(k, "hx-on") ||
					strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:") {
					t.Fatalf("%s: <%s %s=%q>", name, n.Data, a.Key, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
}

// TestRoutesForms: create, edit and delete routes through the forms; the
// service's refusals are shown with 400 and change nothing; filters and
// paging live in the URL.
func TestRoutesForms(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	key := e.setupKey()
	gw, k := e.addPeer(key, "gw-a")
	e.connect(k)
	all := e.allGroup()
	b.get("/ui/routes").want(t, 200, "No routes yet")

	r := b.post("/ui/routes", url.Values{"network": {"10.20.0.0/24"}, "description": {"office"}, "peer": {gw.ID},
		"groups": {all}, "metric": {"5"}, "enabled": {"on"}})
	if r.status != 303 || r.header.Get("Location") != "/ui/routes" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	b.get("/ui/routes").want(t, 200, "Created route 10.20.0.0/24.", "office", "1 of 1 connected", "gw-a")
	var id string
	for rid, rt := range e.snapshot().Routes {
		id = rid
		if rt.Metric != 5 || !rt.Enabled || rt.Peer != gw.ID || rt.NetworkID != "10.20.0.0/24" {
			t.Fatalf("stored route %+v", rt)
		}
	}

	before := e.snapshot()
	bad := []struct {
		form url.Values
		msg  string
	}{
		{url.Values{"network": {""}, "peer": {gw.ID}, "groups": {all}}, "network is required"},
		{url.Values{"network": {"10.0.0.0/33"}, "peer": {gw.ID}, "groups": {all}}, "want a prefix"},
		{url.Values{"network": {"10.1.0.0/24"}, "peer": {gw.ID}, "groups": {all}, "metric": {"x"}}, "metric"},
		// The service's own checks, with its words.
		{url.Values{"network": {"100.64.1.0/24"}, "peer": {gw.ID}, "groups": {all}}, "overlaps the overlay range"},
		{url.Values{"network": {"10.1.0.0/24"}, "groups": {all}}, "exactly one of peer or peer_groups"},
		{url.Values{"network": {"10.1.0.0/24"}, "peer": {gw.ID}}, "at least one group is required"},
		{url.Values{"network": {"10.1.0.0/24"}, "peer": {gw.ID}, "groups": {all}, "metric": {"10000"}}, "out of range"},
		{url.Values{"network": {"10.1.0.0/24"}, "peer": {"nope"}, "groups": {all}}, "unknown peer"},
	}
	for _, c := range bad {
		r := b.post("/ui/routes", c.form)
		if r.status != 400 || !strings.Contains(r.body, c.msg) {
			t.Fatalf("%v: %d, want 400 with %q:\n%s", c.form, r.status, c.msg, r.body)
		}
	}
	if r := b.post("/ui/routes", bad[4].form); !strings.Contains(r.body, `value="10.1.0.0/24"`) {
		t.Fatal("a refused form loses what was typed")
	}
	b.post("/ui/routes/nope", bad[0].form).want(t, 404, "not found")
	b.post("/ui/routes/nope/delete", nil).want(t, 404, "not found")
	b.get("/ui/routes/nope").want(t, 404, "not found")
	b.get("/ui/routes?kind=tunnel").want(t, 400, "kind")
	b.get("/ui/routes?health=sick").want(t, 400, "health")
	b.get("/ui/routes?page=0").want(t, 400, "page")
	if after := e.snapshot(); !reflect.DeepEqual(before.Routes, after.Routes) {
		t.Fatal("refused forms changed the routes")
	}

	// Edit: the form shows the route; saving replaces it.
	b.get("/ui/routes/"+id).want(t, 200, `value="10.20.0.0/24"`, `value="office"`)
	r = b.post("/ui/routes/"+id, url.Values{"network": {"10.20.0.0/24"}, "description": {"office v2"}, "peer": {gw.ID},
		"groups": {all}, "metric": {"7"}})
	if r.status != 303 {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	if rt := e.snapshot().Routes[id]; rt.Description != "office v2" || rt.Metric != 7 || rt.Enabled {
		t.Fatalf("updated route %+v", rt)
	}

	// Filters and paging: 60 more routes, an exit node.
	for i := range 60 {
		if _, err := e.svc.Put(e.ctx(), e.acct, &model.Route{Network: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 100, byte(i), 0}), 24),
			PeerGroups: []string{all}, Groups: []string{all}, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.Put(e.ctx(), e.acct, &model.Route{Network: netip.MustParsePrefix("0.0.0.0/0"), Peer: gw.ID,
		Groups: []string{all}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	r = b.get("/ui/routes")
	r.want(t, 200, "Page 1 of 2", `id="next"`)
	if n := strings.Count(r.body, `<tr id="route-`); n != 50 {
		t.Fatalf("page 1 has %d rows", n)
	}
	r = b.get("/ui/routes?page=2")
	r.want(t, 200, "Page 2 of 2", `id="prev"`)
	if n := strings.Count(r.body, `<tr id="route-`); n != 12 {
		t.Fatalf("page 2 has %d rows", n)
	}
	r = b.get("/ui/routes?kind=exit")
	if n := strings.Count(r.body, `<tr id="route-`); n != 1 || !strings.Contains(r.body, "0.0.0.0/0") {
		t.Fatalf("exit filter: %d rows", n)
	}
	r = b.get("/ui/routes?state=disabled&q=office")
	if n := strings.Count(r.body, `<tr id="route-`); n != 1 || !strings.Contains(r.body, `id="route-`+id+`"`) {
		t.Fatalf("disabled+search filter: %d rows", n)
	}
	if r = b.get("/ui/routes?q=nothing-like-this"); !strings.Contains(r.body, "No route matches these filters.") {
		t.Fatal("empty filtered state missing")
	}

	// Delete: a confirmation first, then the route is gone.
	b.post("/ui/routes/"+id+"/delete", nil).want(t, 200, "Delete route 10.20.0.0/24?", `name="confirm" value="yes"`)
	if e.snapshot().Routes[id] == nil {
		t.Fatal("deleted without confirmation")
	}
	if r := b.post("/ui/routes/"+id+"/delete", url.Values{"confirm": {"yes"}}); r.status != 303 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if e.snapshot().Routes[id] != nil {
		t.Fatal("route not deleted")
	}
}

// TestDNSForms: nameserver groups, zones, records and the DNS domain
// through the forms, with the service's refusals shown as 400s.
func TestDNSForms(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	all := e.allGroup()
	b.get("/ui/dns").want(t, 200, "No nameserver groups", "No custom zones")

	r := b.post("/ui/dns/nameservers", url.Values{"name": {"corp"}, "nameservers": {"10.0.0.53, [fd00::53]:5353"},
		"domains": {"corp.example.com Example.ORG."}, "groups": {all}, "enabled": {"on"}})
	if r.status != 303 {
		t.Fatalf("create ns: %d %s", r.status, r.body)
	}
	var nsID string
	for id, n := range e.snapshot().NameserverGroups {
		nsID = id
		want := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.53:53"), netip.MustParseAddrPort("[fd00::53]:5353")}
		if !reflect.DeepEqual(n.Nameservers, want) || !reflect.DeepEqual(n.Domains, []string{"corp.example.com", "example.org"}) || !n.Enabled {
			t.Fatalf("stored %+v", n)
		}
	}
	b.get("/ui/dns").want(t, 200, "Created nameserver group corp.", "[fd00::53]:5353", "example.org")

	before := e.snapshot()
	for _, c := range []struct {
		form url.Values
		msg  string
	}{
		{url.Values{"name": {"x"}, "nameservers": {"dns.google"}, "primary": {"on"}, "groups": {all}}, "want an IP address"},
		{url.Values{"name": {""}, "nameservers": {"1.1.1.1"}, "primary": {"on"}, "groups": {all}}, "name must not be empty"},
		{url.Values{"name": {"x"}, "nameservers": {""}, "primary": {"on"}, "groups": {all}}, "at least one nameserver"},
		{url.Values{"name": {"x"}, "nameservers": {"1.1.1.1"}, "groups": {all}}, "needs match domains"},
		{url.Values{"name": {"x"}, "nameservers": {"1.1.1.1"}, "primary": {"on"}}, "at least one group is required"},
		{url.Values{"name": {"x"}, "nameservers": {"1.1.1.1"}, "domains": {"bad_domain!"}, "groups": {all}}, "not a valid domain"},
	} {
		r := b.post("/ui/dns/nameservers", c.form)
		if r.status != 400 || !strings.Contains(r.body, c.msg) {
			t.Fatalf("%v: %d, want 400 with %q:\n%s", c.form, r.status, c.msg, r.body)
		}
	}
	b.get("/ui/dns/nameservers/nope").want(t, 404, "not found")
	b.post("/ui/dns/zones", url.Values{"domain": {"not a domain"}}).want(t, 400, "not a valid domain")
	peerDomain := before.Settings.DNSDomain
	if peerDomain == "" {
		peerDomain = model.DefaultDNSDomain
	}
	b.post("/ui/dns/zones", url.Values{"domain": {peerDomain}}).want(t, 409, "peer domain")
	b.post("/ui/dns/settings", url.Values{"dns_domain": {"no spaces allowed"}}).want(t, 400, "not a valid domain")
	after := e.snapshot()
	if !reflect.DeepEqual(before.NameserverGroups, after.NameserverGroups) || len(after.DNSZones) != 0 || before.Settings != after.Settings {
		t.Fatal("refused forms changed DNS")
	}

	// Edit the group.
	b.get("/ui/dns/nameservers/"+nsID).want(t, 200, `value="corp"`, `value="10.0.0.53:53 [fd00::53]:5353"`)
	if r := b.post("/ui/dns/nameservers/"+nsID, url.Values{"name": {"corp2"}, "nameservers": {"10.0.0.54"}, "primary": {"on"},
		"groups": {all}}); r.status != 303 {
		t.Fatalf("update ns: %d %s", r.status, r.body)
	}
	if n := e.snapshot().NameserverGroups[nsID]; n.Name != "corp2" || !n.Primary || n.Enabled {
		t.Fatalf("updated %+v", n)
	}

	// A zone, records, deleting one.
	if r := b.post("/ui/dns/zones", url.Values{"domain": {"Corp.Internal."}}); r.status != 303 {
		t.Fatalf("create zone: %d %s", r.status, r.body)
	}
	var zone *model.DNSZone
	for _, z := range e.snapshot().DNSZones {
		zone = z
	}
	if zone.Domain != "corp.internal" {
		t.Fatalf("zone %q", zone.Domain)
	}
	recs := "/ui/dns/zones/" + zone.ID + "/records"
	for _, f := range []url.Values{{"name": {"www"}, "type": {"a"}, "value": {"10.1.2.3"}}, {"name": {"@"}, "type": {"TXT"}, "value": {"v=1"}, "ttl": {"60"}}} {
		if r := b.post(recs, f); r.status != 303 {
			t.Fatalf("add record %v: %d %s", f, r.status, r.body)
		}
	}
	b.post(recs, url.Values{"name": {"x"}, "type": {"A"}, "value": {"fd00::1"}}).want(t, 400, "not an IPv4 address")
	b.post(recs, url.Values{"name": {"x"}, "type": {"MX"}, "value": {"10 mail"}}).want(t, 400, "unsupported type")
	b.post(recs, url.Values{"name": {"x"}, "type": {"A"}, "value": {"10.0.0.1"}, "ttl": {"-1"}}).want(t, 400, "TTL")
	z := e.snapshot().DNSZones[zone.ID]
	if len(z.Records) != 2 || z.Records[0].Type != "A" || z.Records[0].TTL != 300 || z.Records[1].TTL != 60 {
		t.Fatalf("records %+v", z.Records)
	}
	body := b.get("/ui/dns").body
	sums := regexp.MustCompile(`name="sum" value="([0-9a-f]+)"`).FindAllStringSubmatch(body, -1)
	if len(sums) != 2 {
		t.Fatalf("%d record delete forms", len(sums))
	}
	del := recs + "/delete"
	b.post(del, url.Values{"index": {"0"}, "sum": {sums[1][1]}, "confirm": {"yes"}}).want(t, 404, "changed meanwhile")
	b.post(del, url.Values{"index": {"0"}, "sum": {sums[0][1]}}).want(t, 200, "www A 10.1.2.3")
	if r := b.post(del, url.Values{"index": {"0"}, "sum": {sums[0][1]}, "confirm": {"yes"}}); r.status != 303 {
		t.Fatalf("delete record: %d %s", r.status, r.body)
	}
	if z := e.snapshot().DNSZones[zone.ID]; len(z.Records) != 1 || z.Records[0].Value != "v=1" {
		t.Fatalf("after delete: %+v", z.Records)
	}

	// The DNS domain.
	if r := b.post("/ui/dns/settings", url.Values{"dns_domain": {"Mesh.Example."}}); r.status != 303 {
		t.Fatalf("settings: %d %s", r.status, r.body)
	}
	if s := e.snapshot().Settings; s.DNSDomain != "mesh.example" {
		t.Fatalf("settings %+v", s)
	}
	b.get("/ui/dns").want(t, 200, "Peers&#39; DNS domain is now mesh.example.", `value="mesh.example"`)
	b.post("/ui/dns/settings", url.Values{"dns_domain": {"corp.internal"}}).want(t, 409, "already a custom zone")

	// Deletes need a confirmation.
	b.post("/ui/dns/zones/"+zone.ID+"/delete", nil).want(t, 200, "Delete zone corp.internal?", "1 record(s)")
	b.post("/ui/dns/nameservers/"+nsID+"/delete", nil).want(t, 200, "Delete nameserver group corp2?")
	if a := e.snapshot(); len(a.DNSZones) != 1 || len(a.NameserverGroups) != 1 {
		t.Fatal("deleted without confirmation")
	}
	for _, p := range []string{"/ui/dns/zones/" + zone.ID + "/delete", "/ui/dns/nameservers/" + nsID + "/delete"} {
		if r := b.post(p, url.Values{"confirm": {"yes"}}); r.status != 303 {
			t.Fatalf("%s: %d %s", p, r.status, r.body)
		}
	}
	if a := e.snapshot(); len(a.DNSZones) != 0 || len(a.NameserverGroups) != 0 {
		t.Fatal("not deleted")
	}
}
