package mgmt

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"petrel/proto/managementpb"
)

// peerZone restores the peers' DNS zone (zones[0]) on a stream whose
// server leaves its records out (DNSConfig.derived_peer_record_ttl in
// proto/management.proto): full maps get the zone filled from their peers
// and deltas get the record changes their peer changes imply, so Sync
// hands on exactly the maps and deltas an agent that does not derive
// receives, and nothing above this package sees the difference.
//
// It remembers the record of every peer of the stream's current map (by
// public key; the records are shared with the maps handed on), to name the
// records that a delta's removed or renamed peers drop. Owned by one Sync
// call's goroutine.
type peerZone struct {
	ttl  uint32                                // 0: the server sends the records
	recs map[string]*managementpb.SimpleRecord // by peer public key
}

// restoreNames gives back the names a server leaves out of compact peers
// (CAPABILITY_COMPACT_PEERS): an empty name with an fqdn is the fqdn's
// first label. Servers never send empty names otherwise, so this is a
// no-op on streams of servers that do not compact. peer_id is not
// restored: nothing in the agent reads it.
func restoreNames(ps []*managementpb.RemotePeer) {
	for _, p := range ps {
		if p.Name == "" && p.Fqdn != "" {
			p.Name, _, _ = strings.Cut(p.Fqdn, ".")
		}
	}
}

// peerRecord is the record a server builds for p (nil if none): name
// fqdn + ".", type A or AAAA, value the host address of allowed_ips[0].
func peerRecord(p *managementpb.RemotePeer, ttl uint32) *managementpb.SimpleRecord {
	if p.GetFqdn() == "" || len(p.GetAllowedIps()) == 0 {
		return nil
	}
	pfx, err := netip.ParsePrefix(p.AllowedIps[0])
	if err != nil || pfx.Bits() != pfx.Addr().BitLen() {
		return nil
	}
	typ := "AAAA"
	if pfx.Addr().Is4() {
		typ = "A"
	}
	return &managementpb.SimpleRecord{Name: p.Fqdn + ".", Type: typ, Ttl: ttl, Value: pfx.Addr().String()}
}

// full fills m's peers' zone when the server left it out, and starts
// tracking m's peers (or stops, when the server sent the records).
func (z *peerZone) full(m *managementpb.NetworkMap) {
	z.ttl, z.recs = 0, nil
	c := m.GetDns()
	if c.GetDerivedPeerRecordTtl() == 0 || len(c.GetZones()) == 0 {
		return
	}
	z.ttl = c.DerivedPeerRecordTtl
	z.recs = make(map[string]*managementpb.SimpleRecord, len(m.Peers))
	for _, p := range m.Peers {
		if r := peerRecord(p, z.ttl); r != nil {
			z.recs[p.PublicKey] = r
		}
	}
	c.Zones[0].Records = z.records()
	c.DerivedPeerRecordTtl = 0
}

// delta adds the peer-record changes d implies (into its dns_delta, or into
// the zone of its replaced dns), tracking the peers it changes.
func (z *peerZone) delta(d *managementpb.NetworkMapDelta) {
	if z.ttl == 0 {
		return
	}
	var removed []string
	var ups []*managementpb.SimpleRecord
	for _, k := range d.RemovedPeers {
		if r := z.recs[k]; r != nil {
			removed = append(removed, r.Name)
			delete(z.recs, k)
		}
	}
	if c := d.GetDns(); c != nil && c.DerivedPeerRecordTtl != 0 && c.DerivedPeerRecordTtl != z.ttl {
		z.retime(c.DerivedPeerRecordTtl)
	}
	// The last upsert of a key wins (as in netmap.Apply).
	seen := make(map[string]bool, len(d.UpsertPeers))
	for i := len(d.UpsertPeers) - 1; i >= 0; i-- {
		p := d.UpsertPeers[i]
		if seen[p.PublicKey] {
			continue
		}
		seen[p.PublicKey] = true
		old, r := z.recs[p.PublicKey], peerRecord(p, z.ttl)
		if old != nil && (r == nil || r.Name != old.Name) {
			removed = append(removed, old.Name)
		}
		if r == nil {
			delete(z.recs, p.PublicKey)
			continue
		}
		z.recs[p.PublicKey] = r
		ups = append(ups, r)
	}
	if c := d.GetDns(); c != nil {
		// A replaced config holds the whole zone, after this delta's peers.
		if len(c.Zones) > 0 && c.DerivedPeerRecordTtl != 0 {
			c.Zones[0].Records = z.records()
			c.DerivedPeerRecordTtl = 0
		}
		return
	}
	if len(removed)+len(ups) == 0 {
		return
	}
	if d.DnsDelta == nil {
		d.DnsDelta = &managementpb.DNSDelta{}
	}
	d.DnsDelta.RemovedPeerRecords = append(d.DnsDelta.RemovedPeerRecords, removed...)
	d.DnsDelta.UpsertPeerRecords = append(d.DnsDelta.UpsertPeerRecords, ups...)
}

// retime gives every tracked record a new TTL.
func (z *peerZone) retime(ttl uint32) {
	z.ttl = ttl
	for k, r := range z.recs {
		z.recs[k] = &managementpb.SimpleRecord{Name: r.Name, Type: r.Type, Ttl: ttl, Value: r.Value}
	}
}

// records returns the tracked records in the zone's order: by value, then
// name (the order servers build and netmap.Apply keeps).
func (z *peerZone) records() []*managementpb.SimpleRecord {
	out := make([]*managementpb.SimpleRecord, 0, len(z.recs))
	for _, r := range z.recs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *managementpb.SimpleRecord) int {
		return cmp.Or(strings.Compare(a.Value, b.Value), strings.Compare(a.Name, b.Name))
	})
	return out
}
