package engine

import (
	"net/netip"
	"slices"
	"testing"

	"petrel/client/firewall"
	"petrel/internal/keys"
	"petrel/proto/managementpb"
)

func TestFirewallConfig(t *testing.T) {
	pk := func() keys.Public {
		k, err := keys.NewPrivate()
		if err != nil {
			t.Fatal(err)
		}
		return k.Public()
	}
	self, r, x := pk(), pk(), pk()
	nm := &managementpb.NetworkMap{
		Self: &managementpb.PeerConfig{Address: "100.64.0.1/16"},
		Peers: []*managementpb.RemotePeer{
			{PublicKey: r.String(), AllowedIps: []string{"100.64.0.2/32", "10.20.0.0/24"}},
			{PublicKey: x.String(), AllowedIps: []string{"100.64.0.3/32"}},
		},
		PeerSets: []*managementpb.PeerSet{{Id: "g-r", Ips: []string{"100.64.0.2"}}, {Id: "g-x", Ips: []string{"100.64.0.3"}}},
		FirewallRules: []*managementpb.FirewallRule{
			{Id: "out-r", Direction: managementpb.FirewallRule_OUT, Protocol: managementpb.FirewallRule_TCP,
				Ports: []*managementpb.PortRange{{Start: 80, End: 80}}, PeerSets: []string{"g-r"}},
			{Id: "in-x", Direction: managementpb.FirewallRule_IN, Action: managementpb.FirewallRule_DROP,
				PeerSets: []string{"g-x"}},
			{Id: "bad-ports", Ports: []*managementpb.PortRange{{Start: 0, End: 70000}}, PeerSets: []string{"g-x"}},
		},
		Routes: []*managementpb.Route{
			{Id: "site/r", Network: "10.20.0.0/24", PeerPublicKey: r.String()},
			{Id: "mine/self", Network: "10.40.0.0/24", PeerPublicKey: self.String()},
		},
	}
	cfg := firewallConfig(nm, self)
	if !slices.Equal(cfg.Self, []netip.Prefix{netip.MustParsePrefix("100.64.0.1/32")}) {
		t.Errorf("self %v", cfg.Self)
	}
	if !slices.Equal(cfg.Routed, []netip.Prefix{netip.MustParsePrefix("10.40.0.0/24")}) {
		t.Errorf("routed %v", cfg.Routed)
	}
	if len(cfg.Rules) != 2 {
		t.Fatalf("rules %+v (a rule with only bad port ranges must not become an all-ports rule)", cfg.Rules)
	}
	out := cfg.Rules[0]
	if out.Direction != firewall.Out || out.Proto != firewall.TCP || len(out.Ports) != 1 || out.Ports[0] != (firewall.PortRange{Start: 80, End: 80}) {
		t.Errorf("out rule %+v", out)
	}
	if !slices.Contains(out.Peers, netip.MustParsePrefix("10.20.0.0/24")) {
		t.Errorf("the network routed through r is not covered by the rule for r: %v", out.Peers)
	}
	if in := cfg.Rules[1]; in.Direction != firewall.In || in.Action != firewall.Drop || len(in.Peers) != 1 {
		t.Errorf("in rule %+v", in)
	}
}
