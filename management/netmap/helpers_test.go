package netmap

import (
	"fmt"
	"maps"
	"net/netip"
	"time"

	"petrel/management/model"
)

var testNet = netip.MustParsePrefix("100.64.0.0/16")

// clone returns a shallow copy-on-write copy of a: new maps, same objects.
func clone(a *model.Account) *model.Account {
	b := *a
	b.Peers = maps.Clone(a.Peers)
	b.Groups = maps.Clone(a.Groups)
	b.SetupKeys = maps.Clone(a.SetupKeys)
	b.Policies = maps.Clone(a.Policies)
	b.Routes = maps.Clone(a.Routes)
	b.NameserverGroups = maps.Clone(a.NameserverGroups)
	b.DNSZones = maps.Clone(a.DNSZones)
	b.AdminTokens = maps.Clone(a.AdminTokens)
	return &b
}

func newAcct() *model.Account {
	a := model.NewAccount("acct", testNet, time.Unix(0, 0))
	a.Groups["all"] = &model.Group{ID: "all", Name: model.AllGroupName}
	return a
}

func ipN(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})
}

func mkPeer(id string, ip netip.Addr) *model.Peer {
	return &model.Peer{ID: id, Name: "host-" + id, DNSLabel: id, PublicKey: "key-" + id, IP: ip}
}

// addPeer adds a peer to a (not copy-on-write; for fixtures).
func addPeer(a *model.Account, id string, ip netip.Addr, groups ...string) {
	a.Peers[id] = mkPeer(id, ip)
	for _, g := range groups {
		gr := a.Groups[g]
		if gr == nil {
			gr = &model.Group{ID: g, Name: g}
			a.Groups[g] = gr
		}
		gr.PeerIDs = append(gr.PeerIDs, id)
	}
}

func policy(id string, rules ...model.PolicyRule) *model.Policy {
	for i := range rules {
		if rules[i].ID == "" {
			rules[i].ID = fmt.Sprintf("%s-r%d", id, i)
		}
		if rules[i].Action == "" {
			rules[i].Action = model.ActionAccept
		}
		if rules[i].Protocol == "" {
			rules[i].Protocol = model.ProtoAll
		}
	}
	return &model.Policy{ID: id, Name: id, Enabled: true, Rules: rules}
}

func accept(src, dst string) model.PolicyRule {
	return model.PolicyRule{Sources: []string{src}, Destinations: []string{dst}}
}

// benchAccount is the benchmark fixture: n peers in n/20 groups, an
// allow-all policy, per-group TCP policies (22 and 8000-8080) and 5 routes,
// one of them an exit node.
func benchAccount(n int) *model.Account {
	a := newAcct()
	ng := max(n/20, 1)
	for i := range n {
		id := fmt.Sprintf("p%05d", i)
		p := mkPeer(id, ipN(i+1))
		p.PublicKey = fmt.Sprintf("%043d=", i)
		a.Peers[id] = p
		g := fmt.Sprintf("g%04d", i%ng)
		if a.Groups[g] == nil {
			a.Groups[g] = &model.Group{ID: g, Name: g}
		}
		a.Groups[g].PeerIDs = append(a.Groups[g].PeerIDs, id)
	}
	a.Policies["allow-all"] = policy("allow-all", accept("all", "all"))
	for i := range ng {
		g := fmt.Sprintf("g%04d", i)
		r := accept(g, g)
		r.Protocol = model.ProtoTCP
		r.Ports = []model.PortRange{{Start: 22, End: 22}, {Start: 8000, End: 8080}}
		a.Policies["tcp-"+g] = policy("tcp-"+g, r)
	}
	for i := range 4 {
		id := fmt.Sprintf("route%d", i)
		a.Routes[id] = &model.Route{
			ID: id, NetworkID: fmt.Sprintf("net%d", i%2), Network: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i % 2), 0, 0}), 16),
			Peer: fmt.Sprintf("p%05d", i), Groups: []string{"all"}, Metric: 100 + i, Enabled: true,
		}
	}
	a.Routes["exit"] = &model.Route{
		ID: "exit", NetworkID: "exit", Network: netip.MustParsePrefix("0.0.0.0/0"),
		PeerGroups: []string{"g0000"}, Groups: []string{"g0001"}, Metric: 10, Enabled: true, Masquerade: true,
	}
	return a
}
