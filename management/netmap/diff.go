package netmap

import (
	"cmp"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	mpb "petrel/proto/managementpb"
)

// Canonical orders (Map produces them, Apply restores them):
//   - peers by (allowed_ips[0], public_key); identity = public key;
//   - peer sets by id, their ips by string;
//   - peers' zone records by (value, name); identity = name.

func peerKey(p *mpb.RemotePeer) string {
	if len(p.AllowedIps) > 0 {
		return p.AllowedIps[0]
	}
	return ""
}

func cmpPeer(a, b *mpb.RemotePeer) int {
	return cmp.Or(strings.Compare(peerKey(a), peerKey(b)), strings.Compare(a.PublicKey, b.PublicKey))
}

func cmpRecord(a, b *mpb.SimpleRecord) int {
	return cmp.Or(strings.Compare(a.Value, b.Value), strings.Compare(a.Name, b.Name))
}

func same[T proto.Message](a, b T) bool {
	return any(a) == any(b) || proto.Equal(a, b)
}

func sameList[T proto.Message](a, b []T) bool {
	return slices.EqualFunc(a, b, same[T])
}

func emptyDelta(d *mpb.NetworkMapDelta) bool {
	return d.Self == nil && len(d.UpsertPeers) == 0 && len(d.RemovedPeers) == 0 &&
		len(d.PeerSetDeltas) == 0 && len(d.ReplacedPeerSets) == 0 && len(d.RemovedPeerSets) == 0 &&
		!d.FirewallRulesChanged && !d.RoutesChanged && d.Dns == nil && d.DnsDelta == nil
}

func emptyDNSDelta(d *mpb.DNSDelta) bool {
	return len(d.RemovedPeerRecords) == 0 && len(d.UpsertPeerRecords) == 0 &&
		!d.CustomZonesChanged && !d.NameserverGroupsChanged
}

// Diff is the delta from old to new (nil if equal). The delta shares
// read-only sub-messages with new.
func Diff(old, new *mpb.NetworkMap) *mpb.NetworkMapDelta {
	if old == nil {
		old = &mpb.NetworkMap{}
	}
	if new == nil {
		new = &mpb.NetworkMap{}
	}
	d := &mpb.NetworkMapDelta{}
	if !same(old.Self, new.Self) {
		d.Self = new.Self
		if d.Self == nil {
			d.Self = &mpb.PeerConfig{}
		}
	}
	d.UpsertPeers, d.RemovedPeers = diffSorted(old.Peers, new.Peers, cmpPeer, peerPub)
	diffSets(old.PeerSets, new.PeerSets, d)
	if !sameList(old.FirewallRules, new.FirewallRules) {
		d.FirewallRulesChanged, d.FirewallRules = true, new.FirewallRules
	}
	if !sameList(old.Routes, new.Routes) {
		d.RoutesChanged, d.Routes = true, new.Routes
	}
	diffDNS(old.Dns, new.Dns, d)
	if emptyDelta(d) {
		return nil
	}
	return d
}

// diffSorted merge-diffs two lists sorted by cmp: it returns the entries of
// n that are new or changed, and the keys of entries only in o (a key that
// is also upserted, because its sort position moved, is not removed).
func diffSorted[T proto.Message](o, n []T, cmp func(a, b T) int, key func(T) string) (ups []T, removed []string) {
	i, j := 0, 0
	for i < len(o) || j < len(n) {
		c := 0
		switch {
		case i == len(o):
			c = 1
		case j == len(n):
			c = -1
		default:
			c = cmp(o[i], n[j])
		}
		switch {
		case c == 0:
			if !same(o[i], n[j]) {
				ups = append(ups, n[j])
			}
			i, j = i+1, j+1
		case c < 0:
			removed = append(removed, key(o[i]))
			i++
		default:
			ups = append(ups, n[j])
			j++
		}
	}
	if len(removed) > 0 && len(ups) > 0 {
		up := make(map[string]bool, len(ups))
		for _, u := range ups {
			up[key(u)] = true
		}
		removed = slices.DeleteFunc(removed, func(k string) bool { return up[k] })
	}
	return ups, removed
}

func peerPub(p *mpb.RemotePeer) string     { return p.PublicKey }
func recordKey(r *mpb.SimpleRecord) string { return r.Name }

// diffStrings returns the elements only in n (add) and only in o (remove);
// both inputs sorted.
func diffStrings(o, n []string) (add, remove []string) {
	i, j := 0, 0
	for i < len(o) || j < len(n) {
		switch {
		case i == len(o):
			add = append(add, n[j])
			j++
		case j == len(n):
			remove = append(remove, o[i])
			i++
		case o[i] == n[j]:
			i, j = i+1, j+1
		case o[i] < n[j]:
			remove = append(remove, o[i])
			i++
		default:
			add = append(add, n[j])
			j++
		}
	}
	return add, remove
}

func diffSets(o, n []*mpb.PeerSet, d *mpb.NetworkMapDelta) {
	i, j := 0, 0
	for i < len(o) || j < len(n) {
		switch {
		case j == len(n) || (i < len(o) && o[i].Id < n[j].Id):
			d.RemovedPeerSets = append(d.RemovedPeerSets, o[i].Id)
			i++
		case i == len(o) || o[i].Id > n[j].Id:
			d.ReplacedPeerSets = append(d.ReplacedPeerSets, n[j])
			j++
		default:
			if o[i] != n[j] {
				add, rm := diffStrings(o[i].Ips, n[j].Ips)
				if len(add)+len(rm) > 0 {
					d.PeerSetDeltas = append(d.PeerSetDeltas, &mpb.PeerSetDelta{Id: n[j].Id, AddIps: add, RemoveIps: rm})
				}
			}
			i, j = i+1, j+1
		}
	}
}

func diffDNS(o, n *mpb.DNSConfig, d *mpb.NetworkMapDelta) {
	if o == n {
		return
	}
	if o == nil || n == nil || o.Domain != n.Domain || len(o.Zones) == 0 || len(n.Zones) == 0 ||
		o.Zones[0].Domain != n.Zones[0].Domain {
		if n == nil {
			n = &mpb.DNSConfig{}
		}
		if !proto.Equal(o, n) {
			d.Dns = n
		}
		return
	}
	dd := &mpb.DNSDelta{}
	if o.Zones[0] != n.Zones[0] {
		dd.UpsertPeerRecords, dd.RemovedPeerRecords = diffSorted(o.Zones[0].Records, n.Zones[0].Records, cmpRecord, recordKey)
	}
	if !sameList(o.Zones[1:], n.Zones[1:]) {
		dd.CustomZonesChanged, dd.CustomZones = true, n.Zones[1:]
	}
	if !sameList(o.NameserverGroups, n.NameserverGroups) {
		dd.NameserverGroupsChanged, dd.NameserverGroups = true, n.NameserverGroups
	}
	if !emptyDNSDelta(dd) {
		d.DnsDelta = dd
	}
}
