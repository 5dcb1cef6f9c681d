package route

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func baseInput() PlanInput {
	return PlanInput{
		Self: "self", Interface: "petrel0", Overlay: pfx("100.64.0.0/16"),
		Peers: map[string]PeerState{
			"r1": {Name: "r1", Connected: true, Direct: true},
			"r2": {Name: "r2", Connected: true, Direct: true},
			"x1": {Name: "x1", Connected: true, Direct: true},
			"x2": {Name: "x2", Connected: true},
		},
		Exit: ExitPrefs{AllowLAN: true},
		Host: Host{Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.2")},
			Routes: []netip.Prefix{pfx("192.168.1.0/24"), pfx("10.9.0.0/16")}},
		Now: time.Unix(1000, 0),
	}
}

func stateOf(p Plan, id string) RouteStatus {
	for _, r := range p.Routes {
		if r.ID == id {
			return r
		}
	}
	return RouteStatus{State: "missing"}
}

func TestPlanNetworkRoutes(t *testing.T) {
	in := baseInput()
	in.Routes = []MapRoute{
		{ID: "a/r1", NetworkID: "a", Network: pfx("10.20.0.0/24"), Peer: "r1", Metric: 10},
		{ID: "a/r2", NetworkID: "a", Network: pfx("10.20.0.0/24"), Peer: "r2", Metric: 10},
		{ID: "ov/r1", NetworkID: "ov", Network: pfx("100.64.0.0/16"), Peer: "r1"},
		{ID: "wide/r1", NetworkID: "wide", Network: pfx("100.0.0.0/8"), Peer: "r1"},
		{ID: "lan/r1", NetworkID: "lan", Network: pfx("192.168.0.0/16"), Peer: "r1"},
		{ID: "sh/r1", NetworkID: "sh", Network: pfx("10.9.5.0/24"), Peer: "r1"},
		{ID: "meta/r1", NetworkID: "meta", Network: pfx("169.254.0.0/16"), Peer: "r1"},
		{ID: "gone/zz", NetworkID: "gone", Network: pfx("10.30.0.0/24"), Peer: "zz"},
		{ID: "mine/self", NetworkID: "mine", Network: pfx("10.40.0.0/24"), Peer: "self", Masquerade: true,
			Sources: []netip.Prefix{pfx("100.64.0.7/32")}},
	}
	p := Compute(in, NewSelector())
	want := map[string]string{
		"a/r1": StateInstalled, "a/r2": StateStandby, "ov/r1": StateRefused, "wide/r1": StateRefused,
		"lan/r1": StateRefused, "meta/r1": StateRefused, "sh/r1": StateShadowed, "gone/zz": StateUnavailable, "mine/self": StateServed,
	}
	for id, st := range want {
		if got := stateOf(p, id); got.State != st {
			t.Errorf("%s: state %s (%s), want %s", id, got.State, got.Reason, st)
		}
	}
	if got := p.Allowed["r1"]; !slices.Equal(got, []netip.Prefix{pfx("10.20.0.0/24"), pfx("10.9.5.0/24")}) {
		t.Errorf("r1 allowed %v", got)
	}
	if got := p.Allowed["r2"]; len(got) != 0 {
		t.Errorf("standby r2 got allowed IPs %v: both HA peers would carry the prefix", got)
	}
	if !slices.Equal(p.Config.Routes, []netip.Prefix{pfx("10.20.0.0/24"), pfx("10.9.5.0/24")}) {
		t.Errorf("routes %v", p.Config.Routes)
	}
	if len(p.Config.Serve) != 1 || p.Config.Serve[0].Network != pfx("10.40.0.0/24") || !p.Config.Serve[0].Masquerade ||
		len(p.Config.Serve[0].Sources) != 1 {
		t.Errorf("serve %+v", p.Config.Serve)
	}
	if p.Config.Exit.Active {
		t.Error("exit active without any exit route")
	}
}

func TestPlanFailover(t *testing.T) {
	in := baseInput()
	in.Routes = []MapRoute{
		{ID: "a/r1", NetworkID: "a", Network: pfx("10.20.0.0/24"), Peer: "r1"},
		{ID: "a/r2", NetworkID: "a", Network: pfx("10.20.0.0/24"), Peer: "r2"},
	}
	sel := NewSelector()
	if p := Compute(in, sel); len(p.Allowed["r1"]) != 1 {
		t.Fatalf("r1 not chosen first: %+v", p.Routes)
	}
	in.Peers["r1"] = PeerState{Name: "r1"}
	in.Now = in.Now.Add(time.Second)
	p := Compute(in, sel)
	if len(p.Allowed["r2"]) != 1 || len(p.Allowed["r1"]) != 0 {
		t.Fatalf("no failover to r2: %+v", p.Allowed)
	}
}

func TestPlanExit(t *testing.T) {
	exits := []MapRoute{
		{ID: "e/x1", NetworkID: "e", Network: pfx("0.0.0.0/0"), Peer: "x1", AutoApply: true},
		{ID: "e/x2", NetworkID: "e", Network: pfx("0.0.0.0/0"), Peer: "x2"},
	}
	def := pfx("0.0.0.0/0")
	tests := []struct {
		name       string
		prefs      ExitPrefs
		iface      string
		drop       string // peer to remove from the map
		wantPeer   string // allowed 0.0.0.0/0
		wantRoute  bool   // default route into the overlay
		wantActive bool
		wantKill   bool
	}{
		{"auto_apply picks x1", ExitPrefs{AllowLAN: true}, "petrel0", "", "x1", true, true, false},
		{"explicit x2", ExitPrefs{Peer: "x2"}, "petrel0", "", "x2", true, true, false},
		{"off beats auto_apply", ExitPrefs{Off: true}, "petrel0", "", "", false, false, false},
		{"explicit peer gone, no kill switch: underlay", ExitPrefs{Peer: "x2"}, "petrel0", "x2", "", false, false, false},
		{"explicit peer gone, kill switch: dropped", ExitPrefs{Peer: "x2", KillSwitch: true}, "petrel0", "x2", "", true, true, true},
		{"netstack: allowed IPs only", ExitPrefs{Peer: "x1"}, "", "", "x1", false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput()
			in.Interface = tt.iface
			in.Routes = exits
			in.Exit = tt.prefs
			if tt.drop != "" {
				delete(in.Peers, tt.drop)
			}
			p := Compute(in, NewSelector())
			for peer, a := range p.Allowed {
				if slices.Contains(a, def) && peer != tt.wantPeer {
					t.Errorf("%s carries the default route", peer)
				}
			}
			if tt.wantPeer != "" && !slices.Contains(p.Allowed[tt.wantPeer], def) {
				t.Errorf("%s does not carry the default route: %v", tt.wantPeer, p.Allowed)
			}
			if got := slices.Contains(p.Config.Routes, def); got != tt.wantRoute {
				t.Errorf("default route installed %v, want %v", got, tt.wantRoute)
			}
			if p.Config.Exit.Active != tt.wantActive || p.Config.Exit.KillSwitch != tt.wantKill {
				t.Errorf("exit config %+v", p.Config.Exit)
			}
			if p.Config.Exit.Active && !p.Config.Exit.BlockIPv6 {
				t.Error("IPv6 not blocked although the overlay has none")
			}
		})
	}
}
