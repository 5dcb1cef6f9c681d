package netmap

import (
	"slices"

	mpb "petrel/proto/managementpb"
)

// Deltas returns, for every peer present in both prev and next whose map
// differs, the delta from its map in prev to its map in next. Peers absent
// from next get nothing (their streams are closed); peers added in ch (or
// absent from prev) get nothing (they get a full map when they Sync).
//
// When next was derived from prev by Next, only the peers a change can
// affect are visited: since visibility is symmetric, a touched peer X (added,
// removed, changed, or moved between groups) can only change the maps of
// the peers that see X before or after. For those whose view (rules, routes,
// nameservers of their group set) is unchanged, the delta is built directly
// from the touched peers (O(touched) per peer); the others, and every peer
// when next was not derived from prev, get Diff of their two full maps.
func Deltas(prev, next *Snapshot, ch Change) map[string]*mpb.NetworkMapDelta {
	out := map[string]*mpb.NetworkMapDelta{}
	if prev == nil || next == nil {
		return out
	}
	added := make(map[string]bool, len(ch.PeersAdded))
	for _, id := range ch.PeersAdded {
		added[id] = true
	}
	if next.parentID != prev.id || next.rebuilt {
		for _, e := range next.sorted {
			if pe := prev.peers[e.id]; pe != nil && !added[e.id] {
				if d := Diff(prev.mapOf(pe), next.mapOf(e)); d != nil {
					out[e.id] = d
				}
			}
		}
		return out
	}
	dc := &deltaCtx{prev: prev, next: next, eq: map[[2]*view]bool{}}
	dc.zonesChanged = !sameList(prev.zones, next.zones)
	cands := map[string]bool{}
	if dc.zonesChanged {
		for _, e := range next.sorted {
			cands[e.id] = true
		}
	}
	for _, id := range next.touched {
		cands[id] = true
		for _, s := range []*Snapshot{prev, next} {
			if x := s.peers[id]; x != nil {
				vis, _, all := s.visible(x, s.views[x.sig], s.routerState(id))
				if all {
					vis = s.sorted
				}
				for _, y := range vis {
					cands[y.id] = true
				}
			}
		}
	}
	if next.structural {
		for _, e := range next.sorted {
			if pe := prev.peers[e.id]; pe != nil && !cands[e.id] {
				if !dc.viewsEqual(prev.views[pe.sig], next.views[e.sig]) ||
					!prev.routerState(e.id).equal(next.routerState(e.id)) {
					cands[e.id] = true
				}
			}
		}
	}
	for id := range cands {
		pe, ne := prev.peers[id], next.peers[id]
		if pe == nil || ne == nil || added[id] {
			continue
		}
		if d := dc.delta(pe, ne); d != nil {
			out[id] = d
		}
	}
	return out
}

type deltaCtx struct {
	prev, next   *Snapshot
	zonesChanged bool
	eq           map[[2]*view]bool
}

func (dc *deltaCtx) delta(pe, ne *peerEntry) *mpb.NetworkMapDelta {
	pv, nv := dc.prev.views[pe.sig], dc.next.views[ne.sig]
	pst, nst := dc.prev.routerState(pe.id), dc.next.routerState(ne.id)
	if !dc.viewsEqual(pv, nv) || !pst.equal(nst) {
		return Diff(dc.prev.mapOf(pe), dc.next.mapOf(ne))
	}
	// The sets of its rules and of the routes it serves (pst equals nst).
	setIDs := nv.setIDsWith(nst)
	d := &mpb.NetworkMapDelta{}
	if !same(pe.self, ne.self) {
		d.Self = ne.self
	}
	dd := &mpb.DNSDelta{}
	var sets map[string]*mpb.PeerSetDelta
	setDelta := func(gid string) *mpb.PeerSetDelta {
		if sets == nil {
			sets = map[string]*mpb.PeerSetDelta{}
		}
		sd := sets[gid]
		if sd == nil {
			sd = &mpb.PeerSetDelta{Id: gid}
			sets[gid] = sd
		}
		return sd
	}
	for _, id := range dc.next.touched {
		xp, xn := dc.prev.peers[id], dc.next.peers[id]
		// Peer sets hold the visible members plus the peer itself (if a
		// member); peers and records never hold the peer itself.
		self := id == ne.id
		vp := !self && xp != nil && dc.prev.sees(pe, pv, pst, xp)
		vn := !self && xn != nil && dc.next.sees(ne, nv, nst, xn)
		if !vp && !vn && !self {
			continue
		}
		var rpP, rpN *mpb.RemotePeer // nil for self: vp and vn are false
		var recP, recN *mpb.SimpleRecord
		if vp {
			rpP, recP = dc.prev.rpFor(pv, pst, xp), xp.rec
		}
		if vn {
			rpN, recN = dc.next.rpFor(nv, nst, xn), xn.rec
		}
		if rpN != nil && (rpP == nil || !same(rpP, rpN)) {
			d.UpsertPeers = append(d.UpsertPeers, rpN)
		}
		if rpP != nil && (rpN == nil || rpN.PublicKey != rpP.PublicKey) {
			d.RemovedPeers = append(d.RemovedPeers, rpP.PublicKey)
		}
		if recN != nil && (recP == nil || !same(recP, recN)) {
			dd.UpsertPeerRecords = append(dd.UpsertPeerRecords, recN)
		}
		if recP != nil && (recN == nil || recN.Name != recP.Name) {
			dd.RemovedPeerRecords = append(dd.RemovedPeerRecords, recP.Name)
		}
		for _, gid := range setIDs {
			inP := (vp || self) && dc.prev.inGroup(xp, gid)
			inN := (vn || self) && dc.next.inGroup(xn, gid)
			if inP && (!inN || xp.ip != xn.ip) {
				sd := setDelta(gid)
				sd.RemoveIps = append(sd.RemoveIps, xp.ip)
			}
			if inN && (!inP || xp.ip != xn.ip) {
				sd := setDelta(gid)
				sd.AddIps = append(sd.AddIps, xn.ip)
			}
		}
	}
	for _, gid := range setIDs {
		if sd := sets[gid]; sd != nil {
			slices.Sort(sd.AddIps)
			slices.Sort(sd.RemoveIps)
			d.PeerSetDeltas = append(d.PeerSetDeltas, sd)
		}
	}
	if dc.zonesChanged {
		dd.CustomZonesChanged, dd.CustomZones = true, dc.next.zones
	}
	if !emptyDNSDelta(dd) {
		d.DnsDelta = dd
	}
	if emptyDelta(d) {
		return nil
	}
	return d
}

// viewsEqual reports whether two views yield the same rules, routes,
// nameservers and visibility structure (cached per pair).
func (dc *deltaCtx) viewsEqual(a, b *view) bool {
	if a == b {
		return true
	}
	k := [2]*view{a, b}
	if eq, ok := dc.eq[k]; ok {
		return eq
	}
	eq := a.allVisible == b.allVisible && slices.Equal(a.visGroups, b.visGroups) &&
		slices.Equal(a.setIDs, b.setIDs) && sameList(a.fw, b.fw) && sameList(a.ns, b.ns) &&
		slices.EqualFunc(a.routes, b.routes, func(x, y routeRef) bool {
			return x.router == y.router && x.haKey == y.haKey && x.network == y.network && same(x.msg, y.msg)
		})
	dc.eq[k] = eq
	return eq
}
