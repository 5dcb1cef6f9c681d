package netmap

import (
	"fmt"
	"slices"

	mpb "petrel/proto/managementpb"
)

// routerState is what a peer's own routing duties add to its map: it sees
// the peers its routes are distributed to, it gets its own entry of each
// route it serves (with source_sets, whose sets its map holds), and it does
// not receive routes of the HA groups it serves itself.
type routerState struct {
	excluded map[string]bool // HA keys the peer routes
	dist     []string        // distribution groups of the routes it routes: its source sets
	own      []*mpb.Route    // its own entries of the routes it routes, by route ID
}

func (s *Snapshot) routerState(id string) routerState {
	rs := s.routerOf[id]
	if len(rs) == 0 {
		return routerState{}
	}
	st := routerState{excluded: make(map[string]bool, len(rs)), own: make([]*mpb.Route, len(rs))}
	var dist []string
	for i, sr := range rs {
		st.excluded[sr.r.haKey] = true
		dist = append(dist, sr.r.dist...)
		st.own[i] = sr.own
	}
	st.dist = sortedSet(dist)
	return st
}

func (st routerState) equal(o routerState) bool {
	if len(st.excluded) != len(o.excluded) || !slices.Equal(st.dist, o.dist) || !sameList(st.own, o.own) {
		return false
	}
	for k := range st.excluded {
		if !o.excluded[k] {
			return false
		}
	}
	return true
}

// setIDsWith returns the IDs of the peer sets in the map of a peer with view v
// and state st: those of its firewall rules and the source sets of the
// routes it serves (sorted).
func (v *view) setIDsWith(st routerState) []string {
	return union(v.setIDs, st.dist)
}

// Map returns peerID's full network map (ServerConfig is not part of it).
// The map shares read-only sub-messages with the snapshot: do not mutate it.
func (s *Snapshot) Map(peerID string) (*mpb.NetworkMap, error) {
	e := s.peers[peerID]
	if e == nil {
		return nil, fmt.Errorf("build map for %q: %w", peerID, ErrUnknownPeer)
	}
	return s.mapOf(e), nil
}

// Sees reports whether peer a's network map holds peer b: exactly
// whether Map(a) lists b among its peers (false if a == b or either is
// not in the snapshot). It builds no map: a view lookup, the routing
// duties of a and b's groups, so it is cheap enough to ask for every
// pair of a page of peers.
func (s *Snapshot) Sees(a, b string) bool {
	ea, eb := s.peers[a], s.peers[b]
	if ea == nil || eb == nil {
		return false
	}
	return s.sees(ea, s.views[ea.sig], s.routerState(a), eb)
}

// sees reports whether e sees x (v and st belong to e).
func (s *Snapshot) sees(e *peerEntry, v *view, st routerState, x *peerEntry) bool {
	if x.id == e.id {
		return false
	}
	if v.allVisible || intersects(x.groups, v.visGroups) || intersects(x.groups, st.dist) {
		return true
	}
	_, ok := v.routed[x.id]
	return ok
}

// rpFor returns x's RemotePeer as seen by a peer with view v and state st.
func (s *Snapshot) rpFor(v *view, st routerState, x *peerEntry) *mpb.RemotePeer {
	refs, ok := v.routed[x.id]
	if !ok {
		return x.rp
	}
	if len(st.excluded) == 0 {
		return v.routedRP[x.id]
	}
	return withNetworks(x.rp, refs, st.excluded)
}

// without returns es minus e (a new slice); es must be sorted by cmpEntry.
func without[T any](es []*peerEntry, vals []T, e *peerEntry) []T {
	i, ok := slices.BinarySearchFunc(es, e, cmpEntry)
	out := make([]T, 0, len(vals))
	if !ok {
		return append(out, vals...)
	}
	out = append(out, vals[:i]...)
	return append(out, vals[i+1:]...)
}

// visible returns the peers e sees, sorted, and them as a set; all reports
// that e sees every other peer (then vis and set are nil: use s.sorted).
func (s *Snapshot) visible(e *peerEntry, v *view, st routerState) (vis []*peerEntry, set map[*peerEntry]bool, all bool) {
	if v.allVisible || (s.allID != "" && slices.Contains(st.dist, s.allID)) {
		return nil, nil, true
	}
	n := len(v.routed)
	for _, g := range v.visGroups {
		m, _ := s.members(g)
		n += len(m)
	}
	for _, g := range st.dist {
		m, _ := s.members(g)
		n += len(m)
	}
	set = make(map[*peerEntry]bool, n)
	add := func(gid string) {
		m, _ := s.members(gid)
		for _, x := range m {
			set[x] = true
		}
	}
	for _, g := range v.visGroups {
		add(g)
	}
	for _, g := range st.dist {
		add(g)
	}
	for id := range v.routed {
		if x := s.peers[id]; x != nil {
			set[x] = true
		}
	}
	delete(set, e)
	vis = make([]*peerEntry, 0, len(set))
	for x := range set {
		vis = append(vis, x)
	}
	slices.SortFunc(vis, cmpEntry)
	return vis, set, false
}

// visibleSet is gid's set for a peer that may not see all its members: the
// members e sees (vis) plus e itself if it is one. It is the shared full set
// when that selects every member.
func (s *Snapshot) visibleSet(e *peerEntry, gid string, vis map[*peerEntry]bool) *mpb.PeerSet {
	members, ips := s.members(gid)
	var sel []string
	for j, x := range members {
		if x == e || vis[x] {
			sel = append(sel, ips[j])
		}
	}
	if len(sel) == len(members) {
		return s.fullSet(gid)
	}
	return &mpb.PeerSet{Id: gid, Ips: sel}
}

// has reports whether the sorted slice xs holds x.
func has(xs []string, x string) bool {
	_, ok := slices.BinarySearch(xs, x)
	return ok
}

func (s *Snapshot) mapOf(e *peerEntry) *mpb.NetworkMap {
	v := s.views[e.sig]
	st := s.routerState(e.id)
	vis, set, all := s.visible(e, v, st)
	m := &mpb.NetworkMap{Self: e.self}
	var recs []*mpb.SimpleRecord
	if all {
		// Copy the shared lists minus self, then patch the routing peers.
		m.Peers = without(s.sorted, s.allRPs, e)
		recs = s.allRecs
		if e.rec != nil {
			if i, ok := slices.BinarySearchFunc(recs, e.rec, cmpRecord); ok {
				recs = slices.Concat(recs[:i], recs[i+1:])
			}
		}
		for id := range v.routed {
			x := s.peers[id]
			if x == nil || x == e {
				continue
			}
			if i, ok := slices.BinarySearchFunc(m.Peers, x.rp, cmpPeer); ok {
				m.Peers[i] = s.rpFor(v, st, x)
			}
		}
	} else {
		m.Peers = make([]*mpb.RemotePeer, len(vis))
		recs = make([]*mpb.SimpleRecord, 0, len(vis))
		for i, x := range vis {
			m.Peers[i] = s.rpFor(v, st, x)
			if x.rec != nil {
				recs = append(recs, x.rec)
			}
		}
	}
	setIDs := v.setIDsWith(st)
	m.PeerSets = make([]*mpb.PeerSet, len(setIDs))
	for i, gid := range setIDs {
		if all || has(v.visGroups, gid) || has(st.dist, gid) {
			// e sees every member: the snapshot's shared set (it may hold e).
			m.PeerSets[i] = s.fullSet(gid)
		} else {
			m.PeerSets[i] = s.visibleSet(e, gid, set)
		}
	}
	// Rules, routes and nameserver groups: the view's slices, shared
	// read-only (capacity clipped, so an append by a caller copies).
	m.FirewallRules = v.fw
	// A routing peer gets its own entries and none of the HA groups it serves.
	if len(st.excluded) == 0 {
		m.Routes = v.routeMsgs
	} else {
		m.Routes = make([]*mpb.Route, 0, len(v.routes)+len(st.own))
		for _, ref := range v.routes {
			if !st.excluded[ref.haKey] {
				m.Routes = append(m.Routes, ref.msg)
			}
		}
		m.Routes = append(m.Routes, st.own...)
		slices.SortFunc(m.Routes, cmpRoute)
	}
	zones := make([]*mpb.CustomZone, 0, 1+len(s.zones))
	zones = append(zones, &mpb.CustomZone{Domain: s.domain + ".", Records: recs})
	m.Dns = &mpb.DNSConfig{Domain: s.domain, Zones: append(zones, s.zones...), NameserverGroups: v.ns}
	return m
}
