package ui_test

// Browser tests of the routes and DNS pages (the harness is in
// browser_test.go): forms submitted in Chromium, hostile descriptions and
// records rendered as text with no script, dialog or CSP violation, and a
// user's 403. With PETREL_UI_SCREENSHOTS=1 they write docs/ui/routes.png
// and docs/ui/dns.png.

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"petrel/management/model"
)

// hostileText is the probe typed into records: markup and control and
// format characters; hostileDesc the one typed into descriptions, which
// the service refuses with control characters (markup only).
const (
	hostileText = "<img src=x onerror=alert(1)> ctl\x1b[31m\u202eevil\u200b"
	hostileDesc = "<img src=x onerror=alert(1)> evil"
)

// setValue sets a form field's value through the DevTools protocol (the
// page's CSP does not apply to it), for text with control characters.
func (tb *tab) setValue(sel, value string) {
	tb.t.Helper()
	if !tb.eval(`(() => { const el = document.querySelector(` + jsString(sel) + `); if (!el) return false; el.value = ` + jsString(value) + `; return true })()`) {
		tb.t.Fatalf("no field %s", sel)
	}
}

// selectLabel selects the option labelled label in the select sel.
func (tb *tab) selectLabel(sel, label string) {
	tb.t.Helper()
	if !tb.eval(`(() => { const o = [...document.querySelectorAll(` + jsString(sel+" option") + `)].find(o => o.textContent.trim().startsWith(` + jsString(label) + `)); if (!o) return false; o.selected = true; return true })()`) {
		tb.t.Fatalf("no option %q in %s", label, sel)
	}
}

// submit clicks sel (a form's submit button) and waits for the next
// page's flash message, failing unless it reports success.
func (tb *tab) submit(what, sel string) string {
	tb.t.Helper()
	tb.eval(`document.querySelectorAll('.flash').forEach(f => f.remove()); true`)
	tb.do(what, chromedp.Click(sel), chromedp.WaitVisible(".flash"))
	msg := tb.text(".flash")
	if !tb.eval(`document.querySelector('.flash.error') === null`) {
		tb.t.Fatalf("%s: %s", what, msg)
	}
	return msg
}

// value is a form field's current value.
func (tb *tab) value(sel string) string {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Value(sel))
	if err != nil {
		tb.t.Fatalf("value of %s: %v", sel, err)
	}
	return v
}

// noInjectedElements: none of the probes became an element.
const noInjectedElements = `document.querySelector('main img, main svg, main script') === null`

// TestBrowserRoutes creates a route and an exit node through the form in
// Chromium and sees them listed with their routing peers' health; the
// hostile description renders as text; then edits and deletes (with the
// confirmation page).
func TestBrowserRoutes(t *testing.T) {
	chromium(t)
	e := newEnv(t)
	key := e.setupKey()
	_, ka := e.addPeer(key, "gw-frankfurt")
	e.addPeer(key, "gw-paris")
	e.addPeer(key, "laptop")
	e.connect(ka)
	_, err := e.svc.Put(e.ctx(), e.acct, &model.Group{Name: "exit-gateways", PeerIDs: peerIDs(e, "gw-frankfurt", "gw-paris")})
	if err != nil {
		t.Fatal(err)
	}
	all := e.allGroup()
	// An HA pair for the screenshot: the same network through two peers.
	for i, name := range []string{"gw-frankfurt", "gw-paris"} {
		if _, err := e.svc.Put(e.ctx(), e.acct, &model.Route{Network: netip.MustParsePrefix("192.168.10.0/24"), NetworkID: "office",
			Description: "office LAN", Peer: peerIDs(e, name)[0], Groups: []string{all}, Metric: 10 * (i + 1), Enabled: true, Masquerade: true}); err != nil {
			t.Fatal(err)
		}
	}

	tb := newTab(t, e.srv.URL)
	tb.signIn(e.admin)
	tb.open("/ui/routes")
	tb.clean("routes page")

	// A route through one routing peer, with a hostile description.
	tb.setValue("#route-network", "10.20.0.0/24")
	tb.setValue("#route-description", hostileDesc)
	tb.setValue("#route-metric", "5")
	tb.selectLabel("#route-peer", "gw-frankfurt")
	tb.selectLabel("#route-groups", model.AllGroupName)
	if f := tb.submit("create route", "#save-route"); !strings.Contains(f, "Created route 10.20.0.0/24.") {
		t.Fatalf("flash %q", f)
	}
	// An exit node through a peer group.
	tb.setValue("#route-network", "0.0.0.0/0")
	tb.setValue("#route-description", "internet via the gateways")
	tb.selectLabel("#route-peer-groups", "exit-gateways")
	tb.selectLabel("#route-groups", model.AllGroupName)
	tb.do("auto-apply", chromedp.Click("#route-auto-apply"))
	tb.submit("create exit node", "#save-route")

	table := tb.text("#routes")
	for _, want := range []string{"10.20.0.0/24", hostileDesc,
		"0.0.0.0/0", "exit node", "exit-gateways", "1 of 2 connected", "1 of 1 connected", "192.168.10.0/24", "+1 alternative(s)"} {
		if !strings.Contains(table, want) {
			t.Fatalf("routes table lacks %q:\n%s", want, table)
		}
	}
	if !tb.eval(noInjectedElements) {
		t.Fatal("the description became markup")
	}
	var id string
	for rid, rt := range e.snapshot().Routes {
		if rt.Network.String() == "10.20.0.0/24" {
			id = rid
			if rt.Description != hostileDesc || rt.Metric != 5 || !rt.Enabled {
				t.Fatalf("stored %+v", rt)
			}
		}
	}
	tb.clean("create routes")
	tb.screenshot("routes")

	// Filters are in the URL.
	tb.do("filter", chromedp.SetValue("#route-kind", "exit"), chromedp.Click("#route-filter"), chromedp.WaitVisible("#route-clear"))
	if !tb.eval(`location.search.includes('kind=exit') && document.querySelectorAll('#routes tbody tr').length === 1`) {
		t.Fatal("kind filter not applied through the URL")
	}

	// Edit: the form holds the route; the description is shown escaped.
	tb.open("/ui/routes/" + id)
	tb.setValue("#route-metric", "7")
	tb.submit("save route", "#save-route")
	if rt := e.snapshot().Routes[id]; rt.Metric != 7 {
		t.Fatalf("edited %+v", rt)
	}

	// Delete with the confirmation page.
	tb.do("delete", chromedp.Click(`#route-`+id+` form button`), chromedp.WaitVisible("#confirm-delete"))
	if l := tb.text("#confirm-list"); !strings.Contains(l, "10.20.0.0/24") || !strings.Contains(l, "<img src=x") {
		t.Fatalf("confirmation lists %q", l)
	}
	if !tb.eval(noInjectedElements) {
		t.Fatal("the confirmation page made markup of the description")
	}
	tb.do("confirm", chromedp.Click("#confirm-delete"), chromedp.WaitVisible(".flash.ok"))
	if e.snapshot().Routes[id] != nil {
		t.Fatal("route not deleted")
	}
	tb.clean("routes walk")
}

// TestBrowserDNS creates a nameserver group, a zone and a record through
// the forms, with hostile text in the group's description and the TXT
// record, and changes the peers' DNS domain.
func TestBrowserDNS(t *testing.T) {
	chromium(t)
	e := newEnv(t)
	tb := newTab(t, e.srv.URL)
	tb.signIn(e.admin)
	tb.open("/ui/dns")
	tb.clean("DNS page")

	tb.do("nameserver group", chromedp.SendKeys("#ns-name", "corp resolvers"), chromedp.SendKeys("#ns-nameservers", "10.0.0.53 10.0.0.54:5353"),
		chromedp.SendKeys("#ns-domains", "corp.example.com"))
	tb.setValue("#ns-description", hostileDesc)
	tb.selectLabel("#ns-groups", model.AllGroupName)
	tb.submit("create nameserver group", "#save-ns")
	ns := tb.text("#nameservers")
	for _, want := range []string{"corp resolvers", "10.0.0.53:53", "10.0.0.54:5353", "corp.example.com", hostileDesc} {
		if !strings.Contains(ns, want) {
			t.Fatalf("nameserver groups lack %q:\n%s", want, ns)
		}
	}

	tb.do("zone", chromedp.SendKeys("#zone-domain", "corp.internal"))
	tb.submit("create zone", "#create-zone")
	tb.do("A record", chromedp.SendKeys("#zones .rec-name", "db"), chromedp.SendKeys("#zones .rec-value", "10.1.2.3"))
	tb.submit("add A record", "#zones .add-record-button")
	tb.setValue("#zones .rec-name", "www")
	tb.selectLabel("#zones .rec-type", "TXT")
	tb.setValue("#zones .rec-value", hostileText)
	tb.submit("add TXT record", "#zones .add-record-button")
	zones := tb.text("#zones")
	for _, want := range []string{"corp.internal", "db", "10.1.2.3", "www", "TXT", "<img src=x onerror=alert(1)>", `\u+202Eevil`} {
		if !strings.Contains(zones, want) {
			t.Fatalf("zones lack %q:\n%s", want, zones)
		}
	}
	var stored []model.DNSRecord
	for _, z := range e.snapshot().DNSZones {
		stored = z.Records
	}
	if len(stored) != 2 || stored[1].Type != "TXT" || stored[1].Value != hostileText {
		t.Fatalf("stored records %+v", stored)
	}

	tb.setValue("#dns-domain", "mesh.example")
	tb.submit("DNS domain", "#save-dns-domain")
	if d := e.snapshot().Settings.DNSDomain; d != "mesh.example" {
		t.Fatalf("DNS domain %q", d)
	}
	if !tb.eval(noInjectedElements) {
		t.Fatal("a description or record became markup")
	}
	tb.clean("DNS forms")
	tb.screenshot("dns")

	// The edit form holds the text as stored (saving it back changes
	// nothing); the record's confirmation shows the record as text.
	for id := range e.snapshot().NameserverGroups {
		tb.open("/ui/dns/nameservers/" + id)
	}
	if v := tb.value("#ns-description"); v != hostileDesc {
		t.Fatalf("edit form holds the description as %q", v)
	}
	tb.open("/ui/dns")
	tb.do("delete record", chromedp.Click(`#zones table.records tbody tr:nth-child(2) button`), chromedp.WaitVisible("#confirm-delete"))
	if !tb.eval(noInjectedElements) || !strings.Contains(tb.text("#confirm-list"), "<img src=x") {
		t.Fatal("record confirmation")
	}
	tb.do("confirm", chromedp.Click("#confirm-delete"), chromedp.WaitVisible(".flash.ok"))
	for _, z := range e.snapshot().DNSZones {
		if len(z.Records) != 1 {
			t.Fatalf("records after delete: %+v", z.Records)
		}
	}
	tb.clean("DNS walk")
}

// TestBrowserRoutesDNSUser: a user's session gets 403 on both pages, and
// the nav does not offer them.
func TestBrowserRoutesDNSUser(t *testing.T) {
	chromium(t)
	e := newEnv(t)
	alice := e.user("alice", model.RoleUser)
	ut := newTab(t, e.srv.URL)
	ut.signIn(alice.pat)
	if !ut.eval(`document.querySelector('nav a[href="/ui/routes"], nav a[href="/ui/dns"]') === null`) {
		t.Fatal("the nav offers routes or DNS to a user")
	}
	for _, path := range []string{"/ui/routes", "/ui/dns"} {
		ut.open(path)
		if !ut.eval(`document.querySelector('#error') !== null`) {
			t.Fatalf("user on %s: no 403 error page; the page shows %q", path, ut.text("main"))
		}
		if msg := ut.text("#error"); !strings.Contains(msg, "needs the admin role") || !strings.Contains(ut.text("h1"), "403") {
			t.Fatalf("user on %s: %q", path, msg)
		}
		if ut.eval(`document.querySelector('#routes, #nameservers, #route-form, #ns-form') !== null`) {
			t.Fatalf("user sees the content of %s", path)
		}
	}
	ut.forget("status of 403") // the browser logs the 403 page as a failed load
	ut.clean("user tab")
}

// peerIDs returns the IDs of the peers with these names.
func peerIDs(e *env, names ...string) []string {
	e.t.Helper()
	var out []string
	a := e.snapshot()
	for _, n := range names {
		for id, p := range a.Peers {
			if p.Name == n {
				out = append(out, id)
			}
		}
	}
	if len(out) != len(names) {
		e.t.Fatalf("peers %v: found %d", names, len(out))
	}
	return out
}
