package ui_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"petrel/internal/keys"
	"petrel/management/model"
	"petrel/proto/managementpb"
)

// routeRowHTML is the table row of route id on a routes page.
func routeRowHTML(t *testing.T, body, id string) string {
	t.Helper()
	i := strings.Index(body, `id="route-`+id+`"`)
	if i < 0 {
		t.Fatalf("no row for route %s:\n%s", id, body)
	}
	j := strings.Index(body[i:], "</tr>")
	if j < 0 {
		t.Fatalf("row of route %s not closed", id)
	}
	return body[i : i+j]
}

// The routes page shows, per routing peer, how many agents send the
// network through it now, and the network's failover history as the
// agents reported it (reasons as text, never markup).
func TestRouteHealthPage(t *testing.T) {
	e := newEnv(t)
	setup := e.setupKey()
	_, laptop := e.addPeer(setup, "laptop")
	_, desktop := e.addPeer(setup, "desktop")
	gw1, gw1k := e.addPeer(setup, "gw-one")
	gw2, gw2k := e.addPeer(setup, "gw-two")
	var all string
	for id, g := range e.snapshot().Groups {
		if g.Name == model.AllGroupName {
			all = id
		}
	}
	var ids []string // HA through gw-one, HA through gw-two, 10.30 through gw-one
	for _, r := range []*model.Route{
		{NetworkID: "office", Network: netip.MustParsePrefix("10.20.0.0/24"), Peer: gw1.ID, Groups: []string{all}, Enabled: true},
		{NetworkID: "office", Network: netip.MustParsePrefix("10.20.0.0/24"), Peer: gw2.ID, Groups: []string{all}, Enabled: true, Metric: 5},
		{Network: netip.MustParsePrefix("10.30.0.0/24"), Peer: gw1.ID, Groups: []string{all}, Enabled: true},
	} {
		obj, err := e.svc.Put(e.ctx(), e.acct, r)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, obj.ObjectID())
	}
	b := e.browser()
	b.signIn(e.admin)
	page := b.get("/ui/routes")
	page.want(t, 200)
	for _, id := range ids {
		if row := routeRowHTML(t, page.body, id); strings.Contains(row, "active for") || strings.Contains(row, "Failover history") {
			t.Fatalf("route health shown before any agent reported:\n%s", row)
		}
	}

	disconnectLaptop := e.connect(laptop)
	e.connect(desktop)
	entry := func(network string, router keys.Private, reason string) *managementpb.RouteReport {
		pk := router.Public()
		return &managementpb.RouteReport{Network: network, PeerPublicKey: pk[:], Reason: reason, ActiveMs: 1000}
	}
	report := func(from keys.Private, full bool, es ...*managementpb.RouteReport) {
		t.Helper()
		if err := e.svc.ReportPeers(from.Public(), &managementpb.ReportPeersRequest{Full: full, Routes: es}); err != nil {
			t.Fatal(err)
		}
	}
	report(laptop, true, entry("10.20.0.0/24", gw1k, "connected, direct"))
	report(desktop, true, entry("10.20.0.0/24", gw1k, "connected, direct"), entry("10.30.0.0/24", gw1k, "connected, relayed"))
	page = b.get("/ui/routes")
	page.want(t, 200)
	if row := routeRowHTML(t, page.body, ids[0]); !strings.Contains(row, "active for 2 clients") || strings.Contains(row, "Failover history") {
		t.Errorf("HA row through gw-one: want gw-one active for 2 clients and no history:\n%s", row)
	}
	if row := routeRowHTML(t, page.body, ids[1]); strings.Contains(row, "active for") {
		t.Errorf("HA row through gw-two: no client uses it yet:\n%s", row)
	}
	if row := routeRowHTML(t, page.body, ids[2]); !strings.Contains(row, "active for 1 client<") {
		t.Errorf("10.30 row: want gw-one active for 1 client:\n%s", row)
	}

	// The laptop fails over to gw-two: both HA rows show the change.
	report(laptop, false, entry("10.20.0.0/24", gw2k, "failover: <b>gw-one</b> down"))
	page = b.get("/ui/routes")
	page.want(t, 200)
	for i, id := range ids[:2] {
		row := routeRowHTML(t, page.body, id)
		if !strings.Contains(row, "active for 1 client<") || !strings.Contains(row, "Failover history (1)") ||
			!strings.Contains(row, "gw-one</a> → <a") || !strings.Contains(row, "failover: &lt;b&gt;gw-one&lt;/b&gt; down") ||
			strings.Contains(row, "<b>gw-one</b>") || !strings.Contains(row, `href="/ui/peers/`+gw2.ID+`"`) {
			t.Errorf("HA row %d after the failover: want 1 client and the change, reason as text:\n%s", i, row)
		}
	}
	if row := routeRowHTML(t, page.body, ids[2]); strings.Contains(row, "Failover history") {
		t.Errorf("10.30 row shows the HA network's history:\n%s", row)
	}

	// The laptop's stream ends: it no longer counts, the history stays.
	disconnectLaptop()
	var row string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		page = b.get("/ui/routes")
		page.want(t, 200)
		if row = routeRowHTML(t, page.body, ids[1]); !strings.Contains(row, "active for") {
			break
		}
	}
	if strings.Contains(row, "active for") || !strings.Contains(row, "Failover history (1)") {
		t.Errorf("HA row through gw-two after the laptop left: want no count, the history kept:\n%s", row)
	}
}
