package netmap

import (
	"slices"
	"strings"

	mpb "petrel/proto/managementpb"
)

// Apply applies d to m and returns the new map. It never mutates m or d; the
// result shares unchanged sub-messages with both. A nil m is an empty map.
func Apply(m *mpb.NetworkMap, d *mpb.NetworkMapDelta) *mpb.NetworkMap {
	if m == nil {
		m = &mpb.NetworkMap{}
	}
	out := &mpb.NetworkMap{
		Self: m.Self, Peers: m.Peers, PeerSets: m.PeerSets,
		FirewallRules: m.FirewallRules, Routes: m.Routes, Dns: m.Dns,
	}
	if d == nil {
		return out
	}
	if d.Self != nil {
		out.Self = d.Self
	}
	if len(d.RemovedPeers)+len(d.UpsertPeers) > 0 {
		out.Peers = applyPeers(m.Peers, d.RemovedPeers, d.UpsertPeers)
	}
	if len(d.RemovedPeerSets)+len(d.ReplacedPeerSets)+len(d.PeerSetDeltas) > 0 {
		out.PeerSets = applySets(m.PeerSets, d)
	}
	if d.FirewallRulesChanged {
		out.FirewallRules = d.FirewallRules
	}
	if d.RoutesChanged {
		out.Routes = d.Routes
	}
	if d.Dns != nil {
		out.Dns = d.Dns
	}
	if d.DnsDelta != nil {
		out.Dns = applyDNS(out.Dns, d.DnsDelta)
	}
	return out
}

func applyPeers(old []*mpb.RemotePeer, removed []string, ups []*mpb.RemotePeer) []*mpb.RemotePeer {
	drop := make(map[string]bool, len(removed)+len(ups))
	for _, k := range removed {
		drop[k] = true
	}
	for _, p := range ups {
		drop[p.PublicKey] = true
	}
	out := make([]*mpb.RemotePeer, 0, len(old)+len(ups))
	for _, p := range old {
		if !drop[p.PublicKey] {
			out = append(out, p)
		}
	}
	// Last upsert of a key wins.
	seen := make(map[string]bool, len(ups))
	for i := len(ups) - 1; i >= 0; i-- {
		if !seen[ups[i].PublicKey] {
			seen[ups[i].PublicKey] = true
			out = append(out, ups[i])
		}
	}
	slices.SortFunc(out, cmpPeer)
	return out
}

func applySets(old []*mpb.PeerSet, d *mpb.NetworkMapDelta) []*mpb.PeerSet {
	byID := make(map[string]*mpb.PeerSet, len(old)+len(d.ReplacedPeerSets))
	for _, s := range old {
		byID[s.Id] = s
	}
	for _, id := range d.RemovedPeerSets {
		delete(byID, id)
	}
	for _, s := range d.ReplacedPeerSets {
		byID[s.Id] = s
	}
	for _, sd := range d.PeerSetDeltas {
		var ips []string
		if s := byID[sd.Id]; s != nil {
			ips = s.Ips
		}
		rm := make(map[string]bool, len(sd.RemoveIps))
		for _, ip := range sd.RemoveIps {
			rm[ip] = true
		}
		next := make([]string, 0, len(ips)+len(sd.AddIps))
		for _, ip := range ips {
			if !rm[ip] {
				next = append(next, ip)
			}
		}
		next = append(next, sd.AddIps...)
		slices.Sort(next)
		byID[sd.Id] = &mpb.PeerSet{Id: sd.Id, Ips: slices.Compact(next)}
	}
	out := make([]*mpb.PeerSet, 0, len(byID))
	for _, s := range byID {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *mpb.PeerSet) int { return strings.Compare(a.Id, b.Id) })
	return out
}

func applyDNS(c *mpb.DNSConfig, dd *mpb.DNSDelta) *mpb.DNSConfig {
	if c == nil {
		c = &mpb.DNSConfig{}
	}
	out := &mpb.DNSConfig{Domain: c.Domain, Zones: c.Zones, NameserverGroups: c.NameserverGroups,
		DerivedPeerRecordTtl: c.DerivedPeerRecordTtl}
	if len(dd.RemovedPeerRecords)+len(dd.UpsertPeerRecords) > 0 || dd.CustomZonesChanged {
		var z0 *mpb.CustomZone
		var custom []*mpb.CustomZone
		if len(c.Zones) > 0 {
			z0, custom = c.Zones[0], c.Zones[1:]
		} else {
			z0 = &mpb.CustomZone{Domain: c.Domain + "."}
		}
		if len(dd.RemovedPeerRecords)+len(dd.UpsertPeerRecords) > 0 {
			z0 = &mpb.CustomZone{Domain: z0.Domain, Records: applyRecords(z0.Records, dd.RemovedPeerRecords, dd.UpsertPeerRecords)}
		}
		if dd.CustomZonesChanged {
			custom = dd.CustomZones
		}
		out.Zones = append([]*mpb.CustomZone{z0}, custom...)
	}
	if dd.NameserverGroupsChanged {
		out.NameserverGroups = dd.NameserverGroups
	}
	return out
}

func applyRecords(old []*mpb.SimpleRecord, removed []string, ups []*mpb.SimpleRecord) []*mpb.SimpleRecord {
	drop := make(map[string]bool, len(removed)+len(ups))
	for _, n := range removed {
		drop[n] = true
	}
	for _, r := range ups {
		drop[r.Name] = true
	}
	out := make([]*mpb.SimpleRecord, 0, len(old)+len(ups))
	for _, r := range old {
		if !drop[r.Name] {
			out = append(out, r)
		}
	}
	seen := make(map[string]bool, len(ups))
	for i := len(ups) - 1; i >= 0; i-- {
		if !seen[ups[i].Name] {
			seen[ups[i].Name] = true
			out = append(out, ups[i])
		}
	}
	slices.SortFunc(out, cmpRecord)
	return out
}
