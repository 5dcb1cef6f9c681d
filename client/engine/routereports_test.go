package engine

import (
	"testing"
	"time"

	"petrel/client/route"
	"petrel/internal/keys"
	"petrel/proto/managementpb"
)

func TestActiveRoutes(t *testing.T) {
	t0 := time.Unix(5000, 0)
	var r1, r2, x keys.Public
	r1[0], r2[0], x[0] = 1, 2, 3
	plan := route.Plan{Routes: []route.RouteStatus{
		{Network: "10.0.0.0/24", Peer: r1.String(), State: route.StateInstalled, Chosen: true, Reason: "sticky: connected, direct"},
		{Network: "10.0.0.0/24", Peer: r2.String(), State: route.StateStandby},
		{Network: "10.1.0.0/24", Peer: r2.String(), State: route.StateShadowed, Chosen: true},
		{Network: "10.2.0.0/24", Peer: r2.String(), State: route.StateRefused},
		{Network: "10.3.0.0/24", Peer: r2.String(), State: route.StateServed},
		{Network: "0.0.0.0/0", Peer: x.String(), State: route.StateInstalled, Chosen: true, Reason: "exit node in use"},
		{Network: "0.0.0.0/0", Peer: r1.String(), State: route.StateExitIdle},
	}}
	choices := map[string]route.Active{
		"10.0.0.0/24": {Peer: r1.String(), Since: t0, Reason: "failover: previous routing peer is down"},
		"10.1.0.0/24": {Peer: r2.String(), Since: t0.Add(time.Second), Reason: "connected, direct"},
		"10.2.0.0/24": {Peer: r2.String(), Since: t0},                              // refused since: not reported
		"0.0.0.0/0":   {Peer: x.String(), Since: t0, Reason: "connected, relayed"}, // kept from auto mode
	}
	now := t0.Add(time.Hour)

	// The user selected the exit node: no Selector reason; since is kept
	// from the previous result for the same peer.
	prev := map[string]routeEntry{"0.0.0.0/0": {peer: x, since: t0.Add(time.Minute), reason: userExit}}
	got := activeRoutes(plan, choices, prev, now)
	want := map[string]routeEntry{
		"10.0.0.0/24": {r1, t0, "failover: previous routing peer is down"},
		"10.1.0.0/24": {r2, t0.Add(time.Second), "connected, direct"},
		"0.0.0.0/0":   {x, t0.Add(time.Minute), userExit},
	}
	if len(got) != len(want) {
		t.Fatalf("active routes = %v, want %v", got, want)
	}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("%s: %+v, want %+v", n, got[n], w)
		}
	}
	// A user-selected exit node seen for the first time is active since now.
	if got := activeRoutes(plan, choices, nil, now)["0.0.0.0/0"]; !got.since.Equal(now) {
		t.Errorf("new user exit node since %v, want now", got.since)
	}
	// Auto exit node: the Selector's choice, when it is the one in use.
	plan.Exit.Auto = true
	if got := activeRoutes(plan, choices, nil, now)["0.0.0.0/0"]; got.reason != "connected, relayed" || !got.since.Equal(t0) {
		t.Errorf("auto exit node = %+v, want the Selector's reason and time", got)
	}
}

func TestRouteDiff(t *testing.T) {
	t0 := time.Unix(5000, 0)
	now := t0.Add(90 * time.Second)
	var r1, r2 keys.Public
	r1[0], r2[0] = 1, 2
	a := routeEntry{r1, t0, "connected, direct"}
	b := routeEntry{r2, t0.Add(time.Minute), "failover: previous routing peer is down"}
	sent := map[string]routeEntry{"10.0.0.0/24": a, "10.1.0.0/24": a}
	paths := func() *managementpb.ReportPeersRequest {
		return &managementpb.ReportPeersRequest{Peers: []*managementpb.PeerPathReport{{}}}
	}
	for _, c := range []struct {
		name           string
		req            *managementpb.ReportPeersRequest // from the path diff
		cur            map[string]routeEntry
		full           bool
		routes, remove int // -1: no request
		paths          int
	}{
		{"unchanged", nil, map[string]routeEntry{"10.0.0.0/24": a, "10.1.0.0/24": a}, false, -1, -1, 0},
		{"unchanged, paths changed", paths(), map[string]routeEntry{"10.0.0.0/24": a, "10.1.0.0/24": a}, false, 0, 0, 1},
		{"unchanged but full", &managementpb.ReportPeersRequest{Full: true}, map[string]routeEntry{"10.0.0.0/24": a, "10.1.0.0/24": a}, true, 2, 0, 0},
		{"failover", nil, map[string]routeEntry{"10.0.0.0/24": b, "10.1.0.0/24": a}, false, 1, 0, 0},
		{"one gone", nil, map[string]routeEntry{"10.0.0.0/24": a}, false, 0, 1, 0},
		{"full drops nothing by name", &managementpb.ReportPeersRequest{Full: true}, map[string]routeEntry{"10.0.0.0/24": a}, true, 1, 0, 0},
	} {
		req := routeDiff(c.req, sent, c.cur, c.full, now)
		if c.routes < 0 {
			if req != nil {
				t.Errorf("%s: request %v, want none", c.name, req)
			}
			continue
		}
		if req == nil || len(req.Routes) != c.routes || len(req.RemovedNetworks) != c.remove || req.Full != c.full || len(req.Peers) != c.paths {
			t.Errorf("%s: request %v, want %d routes, %d removed, full %v, %d paths", c.name, req, c.routes, c.remove, c.full, c.paths)
		}
	}
	// The entry's wire form: key, reason and how long it has been active.
	req := routeDiff(nil, nil, map[string]routeEntry{"10.0.0.0/24": b}, false, now)
	if len(req.GetRoutes()) != 1 {
		t.Fatalf("request %v, want one route", req)
	}
	if r := req.Routes[0]; r.Network != "10.0.0.0/24" || string(r.PeerPublicKey) != string(r2[:]) || r.Reason != b.reason || r.ActiveMs != 30_000 {
		t.Errorf("route entry %v, want 10.0.0.0/24 through r2, active 30 s", r)
	}
}
