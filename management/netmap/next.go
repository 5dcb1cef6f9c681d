package netmap

import (
	"maps"
	"slices"

	"petrel/management/model"
)

// Next builds the snapshot of the next account version, reusing the indexes
// that the change leaves untouched. Changed objects are found both from ch
// and by pointer comparison with s's account (accounts are copy-on-write).
// Cost: O(peers) pointer copies plus work proportional to the change.
func (s *Snapshot) Next(a *model.Account, ch Change) *Snapshot {
	ch = mergeChange(ch, pointerDiff(s.acct, a))
	if ch.Settings || allGroupID(a) != s.allID || domainOf(a) != s.domain || a.Network != s.acct.Network {
		n := Build(a)
		n.parentID, n.change, n.rebuilt = s.id, ch, true
		return n
	}
	n := &Snapshot{id: snapSeq.Add(1), acct: a, domain: s.domain, allID: s.allID, parentID: s.id, change: ch}

	touched := map[string]bool{}
	for _, ids := range [][]string{ch.PeersAdded, ch.PeersChanged, ch.PeersRemoved} {
		for _, id := range ids {
			touched[id] = true
		}
	}
	changedGroups := map[string]map[string]bool{} // gid → new member set
	for _, gid := range ch.Groups {
		if gid == s.allID {
			continue
		}
		now := map[string]bool{}
		if g := a.Groups[gid]; g != nil {
			for _, pid := range g.PeerIDs {
				now[pid] = true
			}
		}
		changedGroups[gid] = now
		before := map[string]bool{}
		if g := s.groups[gid]; g != nil {
			for _, e := range g.members {
				before[e.id] = true
			}
		}
		for id := range now {
			if !before[id] {
				touched[id] = true
			}
		}
		for id := range before {
			if !now[id] {
				touched[id] = true
			}
		}
	}

	n.peers = maps.Clone(s.peers)
	var fresh []*peerEntry
	affectedGroups := map[string]bool{}
	for gid := range changedGroups {
		affectedGroups[gid] = true
	}
	for id := range touched {
		old := s.peers[id]
		p := a.Peers[id]
		if p == nil || p.Disabled { // disabled peers are in no map
			if old != nil {
				for _, g := range old.groups {
					affectedGroups[g] = true
				}
				delete(n.peers, id)
				n.touched = append(n.touched, id)
			}
			continue
		}
		var groups []string
		switch {
		case old != nil:
			groups = slices.DeleteFunc(slices.Clone(old.groups), func(g string) bool {
				return g == s.allID || changedGroups[g] != nil
			})
		case s.acct.Peers[id] != nil:
			// Enabled again (it was in the account but in no map): its
			// memberships are in groups this change may not touch.
			for gid, g := range a.Groups {
				if gid != s.allID && changedGroups[gid] == nil && slices.Contains(g.PeerIDs, id) {
					groups = append(groups, gid)
				}
			}
		}
		for gid, now := range changedGroups {
			if now[id] {
				groups = append(groups, gid)
			}
		}
		e := n.newEntry(p, groups)
		if old != nil && sameEntry(old, e) {
			continue // e.g. only LastSeen moved: keep the old entry
		}
		if old != nil {
			for _, g := range old.groups {
				affectedGroups[g] = true
			}
		}
		for _, g := range e.groups {
			affectedGroups[g] = true
		}
		n.peers[id] = e
		fresh = append(fresh, e)
		n.touched = append(n.touched, id)
	}
	slices.Sort(n.touched)

	// All peers, sorted: drop the replaced entries, merge in the fresh ones.
	slices.SortFunc(fresh, cmpEntry)
	n.sorted = make([]*peerEntry, 0, len(n.peers))
	i := 0
	for _, e := range s.sorted {
		if n.peers[e.id] != e {
			continue
		}
		for i < len(fresh) && cmpEntry(fresh[i], e) < 0 {
			n.sorted = append(n.sorted, fresh[i])
			i++
		}
		n.sorted = append(n.sorted, e)
	}
	n.sorted = append(n.sorted, fresh[i:]...)
	if len(n.touched) == 0 {
		n.allIPs, n.allRPs, n.allRecs, n.allSet = s.allIPs, s.allRPs, s.allRecs, s.allSet
	} else {
		n.indexAll()
	}

	n.groups = maps.Clone(s.groups)
	for gid := range affectedGroups {
		if gid == s.allID {
			continue
		}
		if g := a.Groups[gid]; g != nil {
			n.groups[gid] = n.newGroup(gid, g.PeerIDs)
		} else {
			delete(n.groups, gid)
		}
	}

	rulesDirty := len(ch.Policies) > 0
	if rulesDirty {
		n.compileRules()
	} else {
		n.rules, n.groupRules = s.rules, s.groupRules
	}
	routesDirty := len(ch.Routes) > 0
	for _, r := range a.Routes {
		if routesDirty {
			break
		}
		if r.Peer != "" && touched[r.Peer] && s.peers[r.Peer] != n.peers[r.Peer] {
			routesDirty = true
		}
		for _, g := range r.PeerGroups {
			if affectedGroups[g] && (g != s.allID || len(n.touched) > 0) {
				routesDirty = true
			}
		}
	}
	if routesDirty {
		n.compileRoutes()
	} else {
		n.routes, n.routerOf = s.routes, s.routerOf
	}
	nsDirty := len(ch.NameserverGroups) > 0
	if nsDirty {
		n.compileNS()
	} else {
		n.ns = s.ns
	}
	if len(ch.Zones) > 0 {
		n.compileZones()
	} else {
		n.zones = s.zones
	}
	n.structural = rulesDirty || routesDirty || nsDirty
	n.views = make(map[string]*view, len(s.views))
	if n.structural {
		n.buildViews(nil)
	} else {
		n.buildViews(s.views)
	}
	return n
}

// sameEntry reports whether two entries of one peer produce identical maps.
func sameEntry(a, b *peerEntry) bool {
	return a.sortKy == b.sortKy && a.sig == b.sig &&
		same(a.rp, b.rp) && same(a.self, b.self) && same(a.rec, b.rec)
}

// pointerDiff lists the objects whose pointers differ between two accounts.
func pointerDiff(o, n *model.Account) Change {
	var ch Change
	for id, p := range n.Peers {
		switch op, ok := o.Peers[id]; {
		case !ok:
			ch.PeersAdded = append(ch.PeersAdded, id)
		case op != p:
			ch.PeersChanged = append(ch.PeersChanged, id)
		}
	}
	for id := range o.Peers {
		if _, ok := n.Peers[id]; !ok {
			ch.PeersRemoved = append(ch.PeersRemoved, id)
		}
	}
	ch.Groups = diffIDs(o.Groups, n.Groups)
	ch.Policies = diffIDs(o.Policies, n.Policies)
	ch.Routes = diffIDs(o.Routes, n.Routes)
	ch.NameserverGroups = diffIDs(o.NameserverGroups, n.NameserverGroups)
	ch.Zones = diffIDs(o.DNSZones, n.DNSZones)
	ch.Settings = o.Settings != n.Settings
	return ch
}

func diffIDs[V comparable](o, n map[string]V) []string {
	var ids []string
	for id, v := range n {
		if ov, ok := o[id]; !ok || ov != v {
			ids = append(ids, id)
		}
	}
	for id := range o {
		if _, ok := n[id]; !ok {
			ids = append(ids, id)
		}
	}
	return ids
}

func union(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	return sortedSet(append(slices.Clone(a), b...))
}

func mergeChange(a, b Change) Change {
	return Change{
		PeersAdded: union(a.PeersAdded, b.PeersAdded), PeersChanged: union(a.PeersChanged, b.PeersChanged),
		PeersRemoved: union(a.PeersRemoved, b.PeersRemoved), Groups: union(a.Groups, b.Groups),
		Policies: union(a.Policies, b.Policies), Routes: union(a.Routes, b.Routes),
		NameserverGroups: union(a.NameserverGroups, b.NameserverGroups), Zones: union(a.Zones, b.Zones),
		Settings: a.Settings || b.Settings,
	}
}
