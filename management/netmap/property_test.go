package netmap

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"petrel/management/model"
	mpb "petrel/proto/managementpb"
)

var propSeeds = flag.Int("netmap.seeds", 0, "random accounts for TestDeltaProperty (0 = default)")

// gen produces random accounts and random copy-on-write changes to them.
type gen struct {
	r      *rand.Rand
	nextID int
	a      *model.Account
}

func (g *gen) id(prefix string) string {
	g.nextID++
	return fmt.Sprintf("%s%d", prefix, g.nextID)
}

func (g *gen) groupIDs() []string {
	ids := make([]string, 0, len(g.a.Groups))
	for id := range g.a.Groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (g *gen) peerIDs() []string {
	ids := make([]string, 0, len(g.a.Peers))
	for id := range g.a.Peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (g *gen) someGroups(max int) []string {
	ids := g.groupIDs()
	var out []string
	for range 1 + g.r.IntN(max) {
		out = append(out, pick(g.r, ids))
	}
	if g.r.IntN(10) == 0 {
		out = append(out, "ghost") // dangling reference
	}
	return out
}

// freeIP returns an unused address; small random octets exercise string
// ordering ("100.64.1.5" vs "100.64.15.1").
func (g *gen) freeIP() netip.Addr {
	for {
		ip := netip.AddrFrom4([4]byte{100, 64, byte(g.r.IntN(20)), byte(1 + g.r.IntN(30))})
		used := false
		for _, p := range g.a.Peers {
			used = used || p.IP == ip
		}
		if !used {
			return ip
		}
	}
}

func (g *gen) newPeer() *model.Peer {
	id := g.id("p")
	p := &model.Peer{ID: id, Name: "n" + id, DNSLabel: "l" + id, PublicKey: g.id("k"), IP: g.freeIP()}
	if g.r.IntN(15) == 0 {
		p.DNSLabel = ""
	}
	return p
}

func (g *gen) rule() model.PolicyRule {
	protos := []model.Protocol{model.ProtoAll, model.ProtoTCP, model.ProtoUDP, model.ProtoICMP}
	r := model.PolicyRule{
		ID: g.id("r"), Sources: g.someGroups(2), Destinations: g.someGroups(2),
		Protocol: pick(g.r, protos), Bidirectional: g.r.IntN(2) == 0, Action: model.ActionAccept,
	}
	if g.r.IntN(5) == 0 {
		r.Action = model.ActionDrop
	}
	if g.r.IntN(2) == 0 {
		r.Ports = []model.PortRange{{Start: uint16(g.r.IntN(100)), End: uint16(100 + g.r.IntN(100))}}
	}
	return r
}

func (g *gen) policy(id string) *model.Policy {
	p := &model.Policy{ID: id, Enabled: g.r.IntN(5) != 0}
	for range 1 + g.r.IntN(3) {
		p.Rules = append(p.Rules, g.rule())
	}
	return p
}

func (g *gen) route(id string) *model.Route {
	nets := []string{"10.0.0.0/24", "10.1.0.0/16", "0.0.0.0/0", "192.168.1.0/24"}
	r := &model.Route{
		ID: id, NetworkID: pick(g.r, []string{"", "a", "b"}), Network: netip.MustParsePrefix(pick(g.r, nets)),
		Groups: g.someGroups(2), Metric: g.r.IntN(3), Enabled: g.r.IntN(5) != 0,
		Masquerade: g.r.IntN(2) == 0, AutoApply: g.r.IntN(2) == 0,
	}
	if ids := g.peerIDs(); len(ids) > 0 && g.r.IntN(2) == 0 {
		r.Peer = pick(g.r, ids)
	} else {
		r.PeerGroups = g.someGroups(1)
	}
	return r
}

func (g *gen) nsGroup(id string) *model.NameserverGroup {
	return &model.NameserverGroup{
		ID: id, Nameservers: []netip.AddrPort{netip.MustParseAddrPort(fmt.Sprintf("10.9.9.%d:53", g.r.IntN(9)))},
		Domains: []string{pick(g.r, []string{"corp.", "lab."})}, Primary: g.r.IntN(2) == 0,
		Groups: g.someGroups(2), Enabled: g.r.IntN(4) != 0,
	}
}

func (g *gen) zone(id string) *model.DNSZone {
	return &model.DNSZone{ID: id, Domain: pick(g.r, []string{"corp", "lab.example"}), Records: []model.DNSRecord{
		{Name: pick(g.r, []string{"@", "www", "db.x."}), Type: "A", Value: fmt.Sprintf("10.0.0.%d", g.r.IntN(9))},
	}}
}

func newGen(seed uint64) *gen {
	g := &gen{r: rand.New(rand.NewPCG(seed, 7))}
	g.a = newAcct()
	for range 2 + g.r.IntN(5) {
		id := g.id("g")
		g.a.Groups[id] = &model.Group{ID: id, Name: id}
	}
	for range 3 + g.r.IntN(25) {
		p := g.newPeer()
		g.a.Peers[p.ID] = p
		for range g.r.IntN(3) {
			gr := g.a.Groups[pick(g.r, g.groupIDs())]
			if gr.Name != model.AllGroupName {
				gr.PeerIDs = append(gr.PeerIDs, p.ID)
			}
		}
	}
	for range g.r.IntN(4) {
		id := g.id("pol")
		g.a.Policies[id] = g.policy(id)
	}
	for range g.r.IntN(4) {
		id := g.id("rt")
		g.a.Routes[id] = g.route(id)
	}
	for range g.r.IntN(3) {
		id := g.id("ns")
		g.a.NameserverGroups[id] = g.nsGroup(id)
	}
	for range g.r.IntN(2) {
		id := g.id("z")
		g.a.DNSZones[id] = g.zone(id)
	}
	return g
}

// setGroup replaces group gid (copy-on-write) with the given members.
func (g *gen) setGroup(ch *Change, gid string, members []string) {
	old := g.a.Groups[gid]
	g.a.Groups[gid] = &model.Group{ID: gid, Name: old.Name, PeerIDs: members}
	ch.Groups = append(ch.Groups, gid)
}

// step applies one random copy-on-write mutation to g.a, recording it in ch.
func (g *gen) step(ch *Change) {
	peers := g.peerIDs()
	switch op := g.r.IntN(16); {
	case op < 3 || len(peers) < 2: // peer joins, maybe into groups
		p := g.newPeer()
		g.a.Peers[p.ID] = p
		ch.PeersAdded = append(ch.PeersAdded, p.ID)
		for range g.r.IntN(3) {
			gid := pick(g.r, g.groupIDs())
			if gid != "all" {
				g.setGroup(ch, gid, append(slices.Clone(g.a.Groups[gid].PeerIDs), p.ID))
			}
		}
	case op < 5: // peer leaves
		id := pick(g.r, peers)
		delete(g.a.Peers, id)
		ch.PeersRemoved = append(ch.PeersRemoved, id)
		for _, gid := range g.groupIDs() {
			if gr := g.a.Groups[gid]; slices.Contains(gr.PeerIDs, id) {
				g.setGroup(ch, gid, slices.DeleteFunc(slices.Clone(gr.PeerIDs), func(s string) bool { return s == id }))
			}
		}
	case op < 8: // peer changes
		id := pick(g.r, peers)
		p := *g.a.Peers[id]
		switch g.r.IntN(6) {
		case 5:
			p.Disabled = !p.Disabled // a blocked user or an expired login
		case 0:
			p.Name += "x"
		case 1:
			p.DNSLabel = g.id("relabel") // labels are unique per account
		case 2:
			p.IP = g.freeIP()
		case 3:
			p.PublicKey = g.id("k")
		case 4:
			p.Meta.Version += "1" // map-neutral
		}
		g.a.Peers[id] = &p
		ch.PeersChanged = append(ch.PeersChanged, id)
	case op < 11: // membership change
		gid := pick(g.r, g.groupIDs())
		if gid == "all" {
			return
		}
		m := slices.Clone(g.a.Groups[gid].PeerIDs)
		if len(m) > 0 && g.r.IntN(2) == 0 {
			m = slices.Delete(m, 0, 1)
		} else {
			m = append(m, pick(g.r, peers))
		}
		g.setGroup(ch, gid, m)
	case op == 11: // group created or deleted
		if gid := pick(g.r, g.groupIDs()); gid != "all" && g.r.IntN(2) == 0 {
			delete(g.a.Groups, gid)
			ch.Groups = append(ch.Groups, gid)
		} else {
			id := g.id("g")
			g.a.Groups[id] = &model.Group{ID: id, Name: id, PeerIDs: []string{pick(g.r, peers)}}
			ch.Groups = append(ch.Groups, id)
		}
	case op == 12:
		id := g.id("pol")
		if len(g.a.Policies) > 0 && g.r.IntN(2) == 0 {
			for pid := range g.a.Policies {
				id = pid
				break
			}
		}
		if g.r.IntN(4) == 0 {
			delete(g.a.Policies, id)
		} else {
			g.a.Policies[id] = g.policy(id)
		}
		ch.Policies = append(ch.Policies, id)
	case op == 13:
		id := g.id("rt")
		if len(g.a.Routes) > 0 && g.r.IntN(2) == 0 {
			for rid := range g.a.Routes {
				id = rid
				break
			}
		}
		g.a.Routes[id] = g.route(id)
		ch.Routes = append(ch.Routes, id)
	case op == 14:
		if g.r.IntN(2) == 0 {
			id := g.id("ns")
			g.a.NameserverGroups[id] = g.nsGroup(id)
			ch.NameserverGroups = append(ch.NameserverGroups, id)
		} else {
			id := g.id("z")
			g.a.DNSZones[id] = g.zone(id)
			ch.Zones = append(ch.Zones, id)
		}
	default:
		if g.r.IntN(4) == 0 {
			g.a.Settings.DNSDomain = pick(g.r, []string{"petrel.internal", "corp.example", ""})
			ch.Settings = true
		}
	}
}

func allMaps(t *testing.T, s *Snapshot) map[string]*mpb.NetworkMap {
	t.Helper()
	out := map[string]*mpb.NetworkMap{}
	for id := range s.peers {
		m, err := s.Map(id)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = m
	}
	return out
}

// TestDeltaProperty is the correctness test of the delta path: for random
// change sequences on random accounts, Apply(Map_before, Deltas(...)[p])
// equals Map_after for every peer, Next agrees with Build, and a peer whose
// map did not change gets no delta.
func TestDeltaProperty(t *testing.T) {
	seeds, steps := 80, 30
	if testing.Short() || raceEnabled {
		seeds = 12
	}
	if *propSeeds > 0 {
		seeds = *propSeeds
	}
	var cov struct{ ownRoutes, setMoves int } // what the seeds exercised
	for seed := range seeds {
		g := newGen(uint64(seed))
		prev := Build(g.a)
		before := allMaps(t, prev)
		for step := range steps {
			var ch Change
			g.a = clone(g.a)
			for range 1 + g.r.IntN(3)*g.r.IntN(2) {
				g.step(&ch)
			}
			hint := ch
			if g.r.IntN(4) == 0 {
				hint = Change{} // Next must find the change by itself
			}
			next := prev.Next(g.a, hint)
			after := allMaps(t, next)
			ref := allMaps(t, Build(g.a))
			where := fmt.Sprintf("seed %d step %d", seed, step)
			if len(after) != len(ref) {
				t.Fatalf("%s: Next has %d peers, Build %d", where, len(after), len(ref))
			}
			for id, m := range ref {
				if !proto.Equal(after[id], m) {
					t.Fatalf("%s: Next map of %s differs from Build:\nnext  %v\nbuild %v", where, id, after[id], m)
				}
			}
			ds := Deltas(prev, next, hint)
			if g.r.IntN(5) == 0 { // also the non-derived path
				ds = Deltas(Build(prev.acct), next, hint)
			}
			checkDeltas(t, where, before, after, ds, ch.PeersAdded)
			cov.ownRoutes += checkSourceSets(t, where, g.a, after)
			cov.setMoves += sourceSetMoves(before, after, ch.PeersAdded)
			prev, before = next, after
		}
	}
	// The generator must exercise routing peers' source sets, and changes
	// of them that reach routers through deltas.
	if cov.ownRoutes == 0 || cov.setMoves == 0 {
		t.Fatalf("source sets not covered: %d own route entries, %d source set changes", cov.ownRoutes, cov.setMoves)
	}
	t.Logf("checked %d own route entries, %d source set changes", cov.ownRoutes, cov.setMoves)
}

// checkSourceSets checks every map against an independent reading of the
// account: a peer's own route entries (peer_public_key = its key) are
// exactly the enabled routes it serves, each with source_sets = the route's
// distribution groups, every such set in the map with all the group's
// members; no other route entry has source_sets. It returns the number of
// own entries checked.
func checkSourceSets(t *testing.T, where string, a *model.Account, maps map[string]*mpb.NetworkMap) int {
	t.Helper()
	members := func(gid string) []string {
		g := a.Groups[gid]
		var ids []string
		switch {
		case g == nil:
		case g.Name == model.AllGroupName:
			for id, p := range a.Peers {
				if !p.Disabled { // disabled peers are in no map
					ids = append(ids, id)
				}
			}
		default:
			for _, id := range g.PeerIDs {
				if p := a.Peers[id]; p != nil && !p.Disabled {
					ids = append(ids, id)
				}
			}
		}
		return sortedSet(ids)
	}
	n := 0
	for pid, m := range maps {
		self := a.Peers[pid]
		want := map[string]string{} // route entry ID → source sets
		for rid, r := range a.Routes {
			if !r.Enabled || !r.Network.IsValid() {
				continue
			}
			routers := []string{r.Peer}
			for _, g := range r.PeerGroups {
				routers = append(routers, members(g)...)
			}
			if slices.Contains(routers, pid) {
				want[rid+"/"+pid] = fmt.Sprint(sortedSet(r.Groups))
			}
		}
		sets := map[string][]string{}
		for _, ps := range m.PeerSets {
			sets[ps.Id] = ps.Ips
		}
		got := 0
		for _, r := range m.Routes {
			if r.PeerPublicKey != self.PublicKey {
				if len(r.SourceSets) > 0 {
					t.Fatalf("%s: peer %s: route %s of another peer has source_sets %v", where, pid, r.Id, r.SourceSets)
				}
				continue
			}
			got++
			if w, ok := want[r.Id]; !ok || fmt.Sprint(r.SourceSets) != w {
				t.Fatalf("%s: peer %s: own route %s source_sets %v, want %q (own entry expected: %v)", where, pid, r.Id, r.SourceSets, w, ok)
			}
			for _, gid := range r.SourceSets {
				ips, ok := sets[gid]
				var wantIPs []string
				for _, id := range members(gid) {
					wantIPs = append(wantIPs, a.Peers[id].IP.String())
				}
				slices.Sort(wantIPs)
				if !ok || !slices.Equal(ips, wantIPs) {
					t.Fatalf("%s: peer %s: source set %s of route %s = %v (present %v), want %v", where, pid, gid, r.Id, ips, ok, wantIPs)
				}
			}
		}
		if got != len(want) {
			t.Fatalf("%s: peer %s has %d own route entries, want %v", where, pid, got, want)
		}
		n += got
	}
	return n
}

// sourceSetMoves counts, over peers present before and after, the source
// sets of own routes whose membership changed.
func sourceSetMoves(before, after map[string]*mpb.NetworkMap, added []string) int {
	n := 0
	for id, m := range after {
		old := before[id]
		if old == nil || slices.Contains(added, id) {
			continue
		}
		src := map[string]bool{}
		for _, r := range m.Routes {
			for _, gid := range r.SourceSets {
				src[gid] = true
			}
		}
		for _, ps := range m.PeerSets {
			for _, ops := range old.PeerSets {
				if src[ps.Id] && ops.Id == ps.Id && !slices.Equal(ops.Ips, ps.Ips) {
					n++
				}
			}
		}
	}
	return n
}

func checkDeltas(t *testing.T, where string, before, after map[string]*mpb.NetworkMap, ds map[string]*mpb.NetworkMapDelta, added []string) {
	t.Helper()
	for id, d := range ds {
		if after[id] == nil || before[id] == nil || slices.Contains(added, id) {
			t.Fatalf("%s: delta for peer %s that is new or gone", where, id)
		}
		if proto.Size(d) == 0 {
			t.Fatalf("%s: empty delta for %s", where, id)
		}
	}
	for id, newMap := range after {
		oldMap := before[id]
		if oldMap == nil || slices.Contains(added, id) {
			continue
		}
		snap := proto.Clone(oldMap)
		got := Apply(oldMap, ds[id])
		if !proto.Equal(got, newMap) {
			t.Fatalf("%s: peer %s: Apply(old, delta) != new\nold   %v\ndelta %v\ngot   %v\nwant  %v", where, id, oldMap, ds[id], got, newMap)
		}
		if !proto.Equal(snap, oldMap) {
			t.Fatalf("%s: Apply mutated its input", where)
		}
		if proto.Equal(oldMap, newMap) && ds[id] != nil {
			t.Fatalf("%s: peer %s: unchanged map got delta %v", where, id, ds[id])
		}
		if got := Apply(oldMap, Diff(oldMap, newMap)); !proto.Equal(got, newMap) {
			t.Fatalf("%s: peer %s: Apply(old, Diff(old, new)) != new", where, id)
		}
	}
}
