package netmap

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"petrel/management/model"
	mpb "petrel/proto/managementpb"
)

func mustMap(t *testing.T, s *Snapshot, id string) *mpb.NetworkMap {
	t.Helper()
	m, err := s.Map(id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func peerIDsOf(m *mpb.NetworkMap) string {
	var ids []string
	for _, p := range m.Peers {
		ids = append(ids, p.PeerId)
	}
	slices.Sort(ids)
	return strings.Join(ids, ",")
}

// rulesOf summarises firewall rules as "ACTION DIR proto ports sets".
func rulesOf(m *mpb.NetworkMap) []string {
	var out []string
	for _, r := range m.FirewallRules {
		var ports []string
		for _, p := range r.Ports {
			ports = append(ports, fmt.Sprintf("%d-%d", p.Start, p.End))
		}
		out = append(out, fmt.Sprintf("%s %s %s [%s] %s", r.Action, r.Direction, r.Protocol,
			strings.Join(ports, " "), strings.Join(r.PeerSets, "+")))
	}
	return out
}

// routesOf summarises routes as "id network_id network key mMETRIC [source_sets]".
func routesOf(m *mpb.NetworkMap) []string {
	var out []string
	for _, r := range m.Routes {
		out = append(out, fmt.Sprintf("%s %s %s %s m%d [%s]", r.Id, r.NetworkId, r.Network, r.PeerPublicKey, r.Metric,
			strings.Join(r.SourceSets, " ")))
	}
	return out
}

func setsOf(m *mpb.NetworkMap) map[string]string {
	out := map[string]string{}
	for _, s := range m.PeerSets {
		out[s.Id] = strings.Join(s.Ips, ",")
	}
	return out
}

// fixture: a, b in "dev"; c in "prod"; d in no group.
func smallAccount() *model.Account {
	a := newAcct()
	addPeer(a, "a", ipN(1), "dev")
	addPeer(a, "b", ipN(2), "dev")
	addPeer(a, "c", ipN(3), "prod")
	addPeer(a, "d", ipN(4))
	return a
}

func TestVisibility(t *testing.T) {
	disabled := policy("off", accept("all", "all"))
	disabled.Enabled = false
	drop := policy("drop", accept("all", "all"))
	drop.Rules[0].Action = model.ActionDrop
	cases := []struct {
		name     string
		policies []*model.Policy
		want     map[string]string // peer → visible peer IDs
	}{
		{"no policy", nil, map[string]string{"a": "", "c": "", "d": ""}},
		{"all to all", []*model.Policy{policy("p", accept("all", "all"))},
			map[string]string{"a": "b,c,d", "b": "a,c,d", "d": "a,b,c"}},
		{"dev to prod is symmetric", []*model.Policy{policy("p", accept("dev", "prod"))},
			map[string]string{"a": "c", "b": "c", "c": "a,b", "d": ""}},
		{"within group", []*model.Policy{policy("p", accept("dev", "dev"))},
			map[string]string{"a": "b", "b": "a", "c": ""}},
		{"disabled policy", []*model.Policy{disabled}, map[string]string{"a": "", "d": ""}},
		{"drop rule grants no visibility", []*model.Policy{drop}, map[string]string{"a": "", "c": ""}},
		{"unknown group", []*model.Policy{policy("p", accept("ghost", "all"))}, map[string]string{"a": "", "d": ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := smallAccount()
			for _, p := range tc.policies {
				a.Policies[p.ID] = p
			}
			s := Build(a)
			for peer, want := range tc.want {
				if got := peerIDsOf(mustMap(t, s, peer)); got != want {
					t.Errorf("%s sees %q, want %q", peer, got, want)
				}
			}
		})
	}
}

func TestFirewallRules(t *testing.T) {
	tcp := accept("dev", "prod")
	tcp.Protocol, tcp.Ports = model.ProtoTCP, []model.PortRange{{Start: 22, End: 22}, {Start: 8000, End: 8080}}
	bidir := accept("dev", "prod")
	bidir.Protocol, bidir.Bidirectional = model.ProtoUDP, true
	drop := accept("dev", "prod")
	drop.Action, drop.Protocol, drop.Ports = model.ActionDrop, model.ProtoICMP, []model.PortRange{{Start: 1, End: 2}}
	cases := []struct {
		name  string
		rules []model.PolicyRule
		peer  string
		want  []string
	}{
		{"destination gets IN", []model.PolicyRule{tcp}, "c", []string{"ACCEPT IN TCP [22-22 8000-8080] dev"}},
		{"source gets OUT", []model.PolicyRule{tcp}, "a", []string{"ACCEPT OUT TCP [22-22 8000-8080] prod"}},
		{"unrelated peer gets none", []model.PolicyRule{tcp}, "d", nil},
		{"bidirectional dst", []model.PolicyRule{bidir}, "c", []string{"ACCEPT IN UDP [] dev", "ACCEPT OUT UDP [] dev"}},
		{"bidirectional src", []model.PolicyRule{bidir}, "a", []string{"ACCEPT OUT UDP [] prod", "ACCEPT IN UDP [] prod"}},
		{"drop first, icmp has no ports", []model.PolicyRule{tcp, drop}, "c",
			[]string{"DROP IN ICMP [] dev", "ACCEPT IN TCP [22-22 8000-8080] dev"}},
		{"both ends", []model.PolicyRule{accept("dev", "dev")}, "a", []string{"ACCEPT IN ALL [] dev", "ACCEPT OUT ALL [] dev"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := smallAccount()
			a.Policies["p"] = policy("p", tc.rules...)
			m := mustMap(t, Build(a), tc.peer)
			if got := rulesOf(m); !slices.Equal(got, tc.want) {
				t.Errorf("rules = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPeerSets(t *testing.T) {
	a := smallAccount()
	a.Policies["p"] = policy("p", accept("dev", "all"))
	s := Build(a)
	// a (dev → all): OUT to all; IN from dev. a sees every member of both,
	// so it gets the full sets, which hold a itself.
	ma := mustMap(t, s, "a")
	want := map[string]string{"all": "100.64.0.1,100.64.0.2,100.64.0.3,100.64.0.4", "dev": "100.64.0.1,100.64.0.2"}
	if got := setsOf(ma); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("a sets = %v, want %v", got, want)
	}
	// b's sets are identical: the same messages, shared, not copies.
	mb := mustMap(t, s, "b")
	if len(mb.PeerSets) != len(ma.PeerSets) {
		t.Fatalf("b sets = %v", setsOf(mb))
	}
	for i := range ma.PeerSets {
		if ma.PeerSets[i] != mb.PeerSets[i] {
			t.Errorf("set %s is not shared between a and b", ma.PeerSets[i].Id)
		}
	}
	// c sees only dev (IN from dev): no "all" set; c is not in dev.
	if got := setsOf(mustMap(t, s, "c")); fmt.Sprint(got) != fmt.Sprint(map[string]string{"dev": "100.64.0.1,100.64.0.2"}) {
		t.Errorf("c sets = %v", got)
	}
	// Drop-only sets hold the visible members, plus the peer itself if it
	// is a member: a sees only b (dev → dev).
	a.Policies["d"] = policy("d", model.PolicyRule{Sources: []string{"all"}, Destinations: []string{"dev"}, Action: model.ActionDrop})
	a.Policies["p"] = policy("p", accept("dev", "dev"))
	s = Build(a)
	want = map[string]string{"all": "100.64.0.1,100.64.0.2", "dev": "100.64.0.1,100.64.0.2"}
	if got := setsOf(mustMap(t, s, "a")); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("a sets with drop = %v, want %v", got, want)
	}
	// c (OUT drop to dev) sees nobody and is not in dev: an empty set.
	if got := setsOf(mustMap(t, s, "c")); fmt.Sprint(got) != fmt.Sprint(map[string]string{"dev": ""}) {
		t.Errorf("c sets with drop = %v", got)
	}
}

// TestSelfInSetsDelta: the peer's own address moves in the sets that hold
// it when it changes IP or joins a set's group without a view change.
func TestSelfInSetsDelta(t *testing.T) {
	a := smallAccount()
	a.Groups["ops"] = &model.Group{ID: "ops", Name: "ops"}
	// One rule referencing dev and ops on both sides: joining ops changes
	// neither a's rules nor its visibility structure, only the ops set.
	a.Policies["p"] = policy("p", model.PolicyRule{Sources: []string{"dev", "ops"}, Destinations: []string{"dev", "ops"}})
	s := Build(a)
	b := clone(a)
	b.Groups["ops"] = &model.Group{ID: "ops", Name: "ops", PeerIDs: []string{"a"}}
	p := *b.Peers["a"]
	p.IP = ipN(9)
	b.Peers["a"] = &p
	ch := Change{PeersChanged: []string{"a"}, Groups: []string{"ops"}}
	n := s.Next(b, ch)
	ds := Deltas(s, n, ch)
	got := map[string]string{}
	for _, sd := range ds["a"].GetPeerSetDeltas() {
		got[sd.Id] = fmt.Sprintf("+%v -%v", sd.AddIps, sd.RemoveIps)
	}
	want := map[string]string{"dev": "+[100.64.0.9] -[100.64.0.1]", "ops": "+[100.64.0.9] -[]"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("a's set deltas = %v, want %v", got, want)
	}
	if m := Apply(mustMap(t, s, "a"), ds["a"]); !proto.Equal(m, mustMap(t, n, "a")) {
		t.Errorf("Apply(old, delta) = %v, want %v", m, mustMap(t, n, "a"))
	}
}

func TestRoutes(t *testing.T) {
	a := smallAccount()
	addPeer(a, "r1", ipN(10), "routers")
	addPeer(a, "r2", ipN(11), "routers")
	a.Routes["lan"] = &model.Route{ID: "lan", NetworkID: "lan", Network: netip.MustParsePrefix("10.1.0.0/16"),
		PeerGroups: []string{"routers"}, Groups: []string{"all"}, Metric: 5, Enabled: true, Masquerade: true}
	a.Routes["exit"] = &model.Route{ID: "exit", Network: netip.MustParsePrefix("0.0.0.0/0"),
		Peer: "c", Groups: []string{"dev"}, Enabled: true, AutoApply: true}
	a.Routes["off"] = &model.Route{ID: "off", Network: netip.MustParsePrefix("10.2.0.0/16"),
		Peer: "c", Groups: []string{"all"}}
	s := Build(a)

	ma := mustMap(t, s, "a")
	want := []string{"exit/c exit 0.0.0.0/0 key-c m0 []", "lan/r1 lan 10.1.0.0/16 key-r1 m5 []", "lan/r2 lan 10.1.0.0/16 key-r2 m5 []"}
	if got := routesOf(ma); !slices.Equal(got, want) {
		t.Errorf("a routes = %q, want %q", got, want)
	}
	if peerIDsOf(ma) != "c,r1,r2" {
		t.Errorf("a sees %q (routing peers only)", peerIDsOf(ma))
	}
	for _, p := range ma.Peers {
		wantIPs := map[string]string{"c": "100.64.0.3/32,0.0.0.0/0", "r1": "100.64.0.10/32,10.1.0.0/16", "r2": "100.64.0.11/32,10.1.0.0/16"}[p.PeerId]
		if got := strings.Join(p.AllowedIps, ","); got != wantIPs {
			t.Errorf("a: %s allowed_ips %s, want %s", p.PeerId, got, wantIPs)
		}
	}
	// c routes the exit node for dev: it sees dev, gets the lan routes and
	// its own exit entry, whose source set (dev) is in its map.
	mc := mustMap(t, s, "c")
	want = []string{"exit/c exit 0.0.0.0/0 key-c m0 [dev]", "lan/r1 lan 10.1.0.0/16 key-r1 m5 []", "lan/r2 lan 10.1.0.0/16 key-r2 m5 []"}
	if got := routesOf(mc); peerIDsOf(mc) != "a,b,r1,r2" || !slices.Equal(got, want) {
		t.Errorf("c sees %q, routes %q, want %q", peerIDsOf(mc), got, want)
	}
	if got := setsOf(mc); len(got) != 1 || got["dev"] != "100.64.0.1,100.64.0.2" {
		t.Errorf("c's sets = %v, want dev with a and b", got)
	}
	// r1 gets its own lan entry (source set: all) but not r2's alternative,
	// and sees everyone it serves.
	m1 := mustMap(t, s, "r1")
	want = []string{"lan/r1 lan 10.1.0.0/16 key-r1 m5 [all]"}
	if got := routesOf(m1); !slices.Equal(got, want) || peerIDsOf(m1) != "a,b,c,d,r2" {
		t.Errorf("r1 routes %q (want %q), sees %q", got, want, peerIDsOf(m1))
	}
	if got := setsOf(m1); len(got) != 1 || got["all"] != "100.64.0.1,100.64.0.10,100.64.0.11,100.64.0.2,100.64.0.3,100.64.0.4" {
		t.Errorf("r1's sets = %v, want the All set", got)
	}
	if len(m1.PeerSets) != 1 || m1.PeerSets[0] != s.allSet {
		t.Error("r1's All set is not the shared one")
	}
	for _, p := range m1.Peers {
		if len(p.AllowedIps) != 1 {
			t.Errorf("r1: %s has routed allowed_ips %v", p.PeerId, p.AllowedIps)
		}
	}
	// d gets lan only; c's exit node is not distributed to it.
	if md := mustMap(t, s, "d"); len(md.Routes) != 2 || peerIDsOf(md) != "r1,r2" {
		t.Errorf("d routes %v sees %q", md.Routes, peerIDsOf(md))
	}
}

// TestRouteSourceSets: a routing peer's own route entries name the sets of
// the route's distribution groups, its map holds those sets, and when a peer
// joins or leaves a distribution group (or registers, for the All group) the
// set follows, in the full map and through the delta.
func TestRouteSourceSets(t *testing.T) {
	a := smallAccount() // a, b in dev; c in prod; d in none
	addPeer(a, "r", ipN(10))
	addPeer(a, "x", ipN(20))
	a.Routes["lan"] = &model.Route{ID: "lan", Network: netip.MustParsePrefix("10.1.0.0/16"),
		Peer: "r", Groups: []string{"dev", "prod"}, Enabled: true}
	a.Routes["exit"] = &model.Route{ID: "exit", Network: netip.MustParsePrefix("0.0.0.0/0"),
		Peer: "c", Groups: []string{"all"}, Enabled: true}
	s := Build(a)

	mr := mustMap(t, s, "r")
	if got, want := routesOf(mr), []string{"exit/c exit 0.0.0.0/0 key-c m0 []", "lan/r lan 10.1.0.0/16 key-r m0 [dev prod]"}; !slices.Equal(got, want) {
		t.Fatalf("r routes = %q, want %q", got, want)
	}
	if got, want := setsOf(mr), map[string]string{"dev": "100.64.0.1,100.64.0.2", "prod": "100.64.0.3"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("r sets = %v, want %v", got, want)
	}
	// Peers that use the route get no source sets.
	if got := routesOf(mustMap(t, s, "a")); !slices.Equal(got, []string{"exit/c exit 0.0.0.0/0 key-c m0 []", "lan/r lan 10.1.0.0/16 key-r m0 []"}) {
		t.Fatalf("a routes = %q", got)
	}

	// step applies a group change and checks r's map (full and by delta).
	step := func(name string, s *Snapshot, b *model.Account, ch Change, peer, wantSets string, wantDelta string) *Snapshot {
		t.Helper()
		n := s.Next(b, ch)
		for _, got := range []*mpb.NetworkMap{mustMap(t, n, peer), mustMap(t, Build(b), peer)} {
			if fmt.Sprint(setsOf(got)) != wantSets {
				t.Fatalf("%s: %s sets = %v, want %s", name, peer, setsOf(got), wantSets)
			}
		}
		ds := Deltas(s, n, ch)
		var sd []string
		for _, d := range ds[peer].GetPeerSetDeltas() {
			sd = append(sd, fmt.Sprintf("%s +%v -%v", d.Id, d.AddIps, d.RemoveIps))
		}
		if got := strings.Join(sd, "; "); got != wantDelta || len(ds[peer].GetReplacedPeerSets()) > 0 {
			t.Fatalf("%s: %s set deltas %q, want %q (delta %v)", name, peer, got, wantDelta, ds[peer])
		}
		if m := Apply(mustMap(t, s, peer), ds[peer]); !proto.Equal(m, mustMap(t, n, peer)) {
			t.Fatalf("%s: Apply(old, delta) = %v, want %v", name, m, mustMap(t, n, peer))
		}
		return n
	}
	// x joins dev: r sees x and holds its IP in the dev set.
	b := clone(a)
	b.Groups["dev"] = &model.Group{ID: "dev", Name: "dev", PeerIDs: []string{"a", "b", "x"}}
	n := step("join", s, b, Change{Groups: []string{"dev"}}, "r",
		fmt.Sprint(map[string]string{"dev": "100.64.0.1,100.64.0.2,100.64.0.20", "prod": "100.64.0.3"}), "dev +[100.64.0.20] -[]")
	if !strings.Contains(peerIDsOf(mustMap(t, n, "r")), "x") {
		t.Fatalf("r does not see x after it joined dev: %q", peerIDsOf(mustMap(t, n, "r")))
	}
	// x leaves dev again: removed.
	c := clone(b)
	c.Groups["dev"] = &model.Group{ID: "dev", Name: "dev", PeerIDs: []string{"a", "b"}}
	step("leave", n, c, Change{Groups: []string{"dev"}}, "r",
		fmt.Sprint(map[string]string{"dev": "100.64.0.1,100.64.0.2", "prod": "100.64.0.3"}), "dev +[] -[100.64.0.20]")

	// The All group as distribution group: c's exit node. A new peer
	// lands in c's (shared) All set.
	mc := mustMap(t, s, "c")
	if got := routesOf(mc); !slices.Contains(got, "exit/c exit 0.0.0.0/0 key-c m0 [all]") || len(mc.PeerSets) != 1 || mc.PeerSets[0] != s.allSet {
		t.Fatalf("c routes %q, sets %v (want its exit entry with the shared All set)", got, mc.PeerSets)
	}
	d := clone(a)
	addPeer(d, "y", ipN(30))
	n = step("register", s, d, Change{PeersAdded: []string{"y"}}, "c",
		fmt.Sprint(map[string]string{"all": "100.64.0.1,100.64.0.10,100.64.0.2,100.64.0.20,100.64.0.3,100.64.0.30,100.64.0.4"}),
		"all +[100.64.0.30] -[]")
	// ... and leaves it when deleted.
	e := clone(d)
	delete(e.Peers, "y")
	step("delete", n, e, Change{PeersRemoved: []string{"y"}}, "c",
		fmt.Sprint(map[string]string{"all": "100.64.0.1,100.64.0.10,100.64.0.2,100.64.0.20,100.64.0.3,100.64.0.4"}),
		"all +[] -[100.64.0.30]")
}

func TestDNSAndSelf(t *testing.T) {
	a := smallAccount()
	a.Settings.DNSDomain = "Corp.Example."
	a.Policies["p"] = policy("p", accept("dev", "dev"))
	a.Peers["b"].DNSLabel = "" // no record
	a.NameserverGroups["ns1"] = &model.NameserverGroup{ID: "ns1", Enabled: true, Groups: []string{"dev"},
		Nameservers: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.53:53")}, Domains: []string{"lan."}}
	a.NameserverGroups["ns2"] = &model.NameserverGroup{ID: "ns2", Enabled: true, Groups: []string{"prod"}}
	a.NameserverGroups["ns3"] = &model.NameserverGroup{ID: "ns3", Groups: []string{"all"}}
	a.DNSZones["z"] = &model.DNSZone{ID: "z", Domain: "svc.lan", Records: []model.DNSRecord{
		{Name: "www", Type: "a", Value: "10.0.0.8"}, {Name: "@", Type: "TXT", Value: "v", TTL: 5}}}
	addPeer(a, "e", ipN(5), "dev")
	m := mustMap(t, Build(a), "a")
	if m.Self.Address != "100.64.0.1/16" || m.Self.Fqdn != "a.corp.example" || m.Self.PeerId != "a" {
		t.Errorf("self = %v", m.Self)
	}
	if m.Dns.Domain != "corp.example" || len(m.Dns.Zones) != 2 {
		t.Fatalf("dns = %v", m.Dns)
	}
	z0 := m.Dns.Zones[0]
	if z0.Domain != "corp.example." || len(z0.Records) != 1 || z0.Records[0].Name != "e.corp.example." ||
		z0.Records[0].Value != "100.64.0.5" || z0.Records[0].Type != "A" {
		t.Errorf("peers' zone = %v", z0)
	}
	z1 := m.Dns.Zones[1]
	if z1.Domain != "svc.lan." || len(z1.Records) != 2 || z1.Records[0].Name != "svc.lan." || z1.Records[1].Name != "www.svc.lan." ||
		z1.Records[1].Type != "A" || z1.Records[1].Ttl != peerRecordTTL || z1.Records[0].Ttl != 5 {
		t.Errorf("custom zone = %v", z1)
	}
	if len(m.Dns.NameserverGroups) != 1 || m.Dns.NameserverGroups[0].Id != "ns1" || m.Dns.NameserverGroups[0].Nameservers[0] != "10.0.0.53:53" {
		t.Errorf("nameserver groups = %v", m.Dns.NameserverGroups)
	}
	if _, err := Build(a).Map("nope"); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("unknown peer: err = %v", err)
	}
}

func TestCheck(t *testing.T) {
	a := smallAccount()
	ssh := accept("dev", "prod")
	ssh.Protocol, ssh.Ports = model.ProtoTCP, []model.PortRange{{Start: 22, End: 22}}
	dns := accept("prod", "dev")
	dns.Protocol, dns.Bidirectional = model.ProtoUDP, true
	noICMP := accept("all", "prod")
	noICMP.Action, noICMP.Protocol = model.ActionDrop, model.ProtoICMP
	a.Policies["p1"] = policy("p1", ssh, dns)
	a.Policies["p2"] = policy("p2", noICMP, accept("all", "all"))
	a.Policies["p2"].Rules[1].ID = "any"
	s := Build(a)
	cases := []struct {
		src, dst string
		proto    model.Protocol
		port     uint16
		allowed  bool
		rule     string
	}{
		{"a", "c", model.ProtoTCP, 22, true, "p1-r0"},
		{"a", "c", model.ProtoTCP, 23, true, "any"},
		{"a", "c", model.ProtoICMP, 0, false, "p2-r0"},
		{"c", "a", model.ProtoUDP, 53, true, "p1-r1"},
		{"a", "c", model.ProtoUDP, 53, true, "p1-r1"}, // bidirectional
		{"a", "a", model.ProtoTCP, 22, false, ""},
		{"a", "zz", model.ProtoTCP, 22, false, ""},
	}
	for _, tc := range cases {
		v := s.Check(tc.src, tc.dst, tc.proto, tc.port)
		if v.Allowed != tc.allowed || v.RuleID != tc.rule || v.Reason == "" {
			t.Errorf("Check(%s→%s %s/%d) = %+v, want allowed=%v rule=%q", tc.src, tc.dst, tc.proto, tc.port, v, tc.allowed, tc.rule)
		}
	}
	delete(a.Policies, "p2")
	if v := Build(a).Check("a", "c", model.ProtoTCP, 23); v.Allowed || v.RuleID != "" {
		t.Errorf("no matching rule: %+v", v)
	}
}

// TestJoinDelta pins the shape of the hot-path delta: one upserted peer,
// peer-set additions and one DNS record, under 1 KB.
func TestJoinDelta(t *testing.T) {
	a := benchAccount(200)
	s := Build(a)
	b := clone(a)
	addJoiner(b, "new", ipN(60000), "g0003")
	n := s.Next(b, Change{PeersAdded: []string{"new"}, Groups: []string{"g0003"}})
	ds := Deltas(s, n, Change{PeersAdded: []string{"new"}, Groups: []string{"g0003"}})
	if len(ds) != 200 {
		t.Fatalf("%d deltas, want 200", len(ds))
	}
	d := ds["p00003"] // same group as the joiner
	if len(d.UpsertPeers) != 1 || d.UpsertPeers[0].PeerId != "new" || len(d.PeerSetDeltas) != 2 ||
		d.DnsDelta == nil || len(d.DnsDelta.UpsertPeerRecords) != 1 || d.FirewallRulesChanged || d.Dns != nil {
		t.Errorf("delta = %v", d)
	}
	for id, d := range ds {
		if sz := proto.Size(d); sz > 1024 {
			t.Errorf("delta for %s is %d bytes", id, sz)
		}
	}
}

// addJoiner adds a peer copy-on-write (the group is replaced, not mutated).
func addJoiner(a *model.Account, id string, ip netip.Addr, group string) {
	a.Peers[id] = mkPeer(id, ip)
	g := a.Groups[group]
	a.Groups[group] = &model.Group{ID: g.ID, Name: g.Name, PeerIDs: append(slices.Clone(g.PeerIDs), id)}
}

// TestConcurrentReaders: snapshots are immutable; Map, Deltas and Check may
// run concurrently (meaningful under -race).
func TestConcurrentReaders(t *testing.T) {
	a := benchAccount(100)
	s := Build(a)
	b := clone(a)
	addJoiner(b, "new", ipN(60000), "g0001")
	n := s.Next(b, Change{})
	done := make(chan struct{})
	for i := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := range 50 {
				id := fmt.Sprintf("p%05d", (i*50+j)%100)
				if _, err := n.Map(id); err != nil {
					t.Error(err)
					return
				}
				_ = s.Check(id, "p00001", model.ProtoTCP, 22)
				if j%10 == 0 && len(Deltas(s, n, Change{})) != 100 {
					t.Error("wrong number of deltas")
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
