package engine

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"petrel/client/firewall"
	"petrel/internal/keys"
	"petrel/management/model"
	"petrel/management/netmap"
)

// The agents' firewalls and the server's /api/policies/check must agree:
// over random accounts, a new packet from src to dst passes src's
// outbound filter and dst's inbound filter exactly when the server's
// policy check allows it.
func TestFirewallAgreesWithPolicyCheck(t *testing.T) {
	protos := []model.Protocol{model.ProtoTCP, model.ProtoUDP, model.ProtoICMP}
	cases, allowed := 0, 0
	for seed := range uint64(60) {
		r := rand.New(rand.NewPCG(seed, 7))
		acct, ids := randomAccount(t, r)
		snap := netmap.Build(acct)
		filters := map[string]*firewall.Filter{}
		for _, id := range ids {
			nm, err := snap.Map(id)
			if err != nil {
				t.Fatal(err)
			}
			k, _ := keys.ParsePublic(acct.Peers[id].PublicKey)
			f := firewall.New(nil, firewall.WithGCInterval(0))
			f.Apply(firewallConfig(nm, k))
			filters[id] = f
		}
		for range 40 {
			src, dst := ids[r.IntN(len(ids))], ids[r.IntN(len(ids))]
			if src == dst {
				continue
			}
			proto := protos[r.IntN(len(protos))]
			port := uint16(1 + r.IntN(250))
			if proto == model.ProtoICMP {
				port = 0
			}
			want := snap.Check(src, dst, proto, port)
			sip, dip := acct.Peers[src].IP, acct.Peers[dst].IP
			fp := map[model.Protocol]firewall.Proto{model.ProtoTCP: firewall.TCP, model.ProtoUDP: firewall.UDP,
				model.ProtoICMP: firewall.ICMP}[proto]
			out := filters[src].Trace(sip, dip, fp, port)
			in := filters[dst].Trace(sip, dip, fp, port)
			got := out.Allowed && in.Allowed
			cases++
			if got {
				allowed++
			}
			if got != want.Allowed {
				t.Fatalf("seed %d: %s -> %s %s/%d: server says %v (%s %s), agents say out=%v (%s %s) in=%v (%s %s)\npolicies: %s",
					seed, src, dst, proto, port, want.Allowed, want.RuleID, want.Reason, out.Allowed, out.RuleID, out.Reason,
					in.Allowed, in.RuleID, in.Reason, describePolicies(acct))
			}
		}
	}
	if allowed == 0 || allowed == cases {
		t.Fatalf("degenerate cases: %d of %d allowed", allowed, cases)
	}
	t.Logf("%d cases, %d allowed", cases, allowed)
}

func randomAccount(t *testing.T, r *rand.Rand) (*model.Account, []string) {
	a := model.NewAccount("acct", netip.MustParsePrefix("100.64.0.0/16"), time.Unix(0, 0))
	var ids []string
	for i := range 2 + r.IntN(5) {
		k, err := keys.NewPrivate()
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("p%d", i)
		a.Peers[id] = &model.Peer{ID: id, Name: id, DNSLabel: id, PublicKey: k.Public().String(),
			IP: netip.AddrFrom4([4]byte{100, 64, 0, byte(1 + i)})}
		ids = append(ids, id)
	}
	a.Groups["gAll"] = &model.Group{ID: "gAll", Name: "All", PeerIDs: ids}
	var groups []string
	for g := range 1 + r.IntN(3) {
		gid := fmt.Sprintf("g%d", g)
		grp := &model.Group{ID: gid, Name: gid}
		for _, id := range ids {
			if r.IntN(2) == 0 {
				grp.PeerIDs = append(grp.PeerIDs, id)
			}
		}
		a.Groups[gid] = grp
		groups = append(groups, gid)
	}
	groups = append(groups, "gAll")
	protos := []model.Protocol{model.ProtoAll, model.ProtoTCP, model.ProtoUDP, model.ProtoICMP}
	for p := range 1 + r.IntN(3) {
		pol := &model.Policy{ID: fmt.Sprintf("pol%d", p), Name: "x", Enabled: r.IntN(6) != 0}
		for n := range 1 + r.IntN(3) {
			rule := model.PolicyRule{ID: fmt.Sprintf("pol%d-r%d", p, n),
				Sources: []string{groups[r.IntN(len(groups))]}, Destinations: []string{groups[r.IntN(len(groups))]},
				Protocol: protos[r.IntN(len(protos))], Bidirectional: r.IntN(2) == 0, Action: model.ActionAccept}
			if r.IntN(4) == 0 {
				rule.Action = model.ActionDrop
			}
			if rule.Protocol == model.ProtoTCP || rule.Protocol == model.ProtoUDP {
				if r.IntN(2) == 0 {
					lo := uint16(1 + r.IntN(200))
					rule.Ports = []model.PortRange{{Start: lo, End: lo + uint16(r.IntN(60))}}
				}
			}
			pol.Rules = append(pol.Rules, rule)
		}
		a.Policies[pol.ID] = pol
	}
	return a, ids
}

func describePolicies(a *model.Account) string {
	s := ""
	for _, p := range a.Policies {
		s += fmt.Sprintf("\n  %s enabled=%v", p.ID, p.Enabled)
		for _, r := range p.Rules {
			s += fmt.Sprintf("\n    %s %v->%v %s %v bidir=%v %s", r.ID, r.Sources, r.Destinations, r.Protocol, r.Ports,
				r.Bidirectional, r.Action)
		}
	}
	for id, g := range a.Groups {
		s += fmt.Sprintf("\n  group %s %v", id, g.PeerIDs)
	}
	return s
}
