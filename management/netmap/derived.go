package netmap

import (
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	mpb "petrel/proto/managementpb"
)

// WithoutPeerRecords returns r as sent to an agent that derives the peers'
// zone records from the peer list (CAPABILITY_DERIVED_PEER_RECORDS): every
// DNSConfig in it (a full map's, a delta's replaced dns) has its peers'
// zone (zones[0]) emptied and derived_peer_record_ttl set, and a delta's
// dns_delta carries no peer records. Every record of a map is derivable
// from its RemotePeer (newEntry builds both from the same peer), so the
// agent rebuilds exactly the zone Map built; see DNSConfig in
// proto/management.proto for the rule.
//
// r is not modified; the result shares everything else with it (r itself
// when there is nothing to strip).
func WithoutPeerRecords(r *mpb.SyncResponse) *mpb.SyncResponse {
	full, delta := stripMap(r.GetFull()), stripDelta(r.GetDelta())
	if full == r.GetFull() && delta == r.GetDelta() {
		return r
	}
	out := shallowCopy(r)
	out.Full, out.Delta = full, delta
	return out
}

func stripMap(m *mpb.NetworkMap) *mpb.NetworkMap {
	if dns := stripDNS(m.GetDns()); dns != m.GetDns() {
		out := shallowCopy(m)
		out.Dns = dns
		return out
	}
	return m
}

func stripDelta(d *mpb.NetworkMapDelta) *mpb.NetworkMapDelta {
	dns := stripDNS(d.GetDns())
	dd := d.GetDnsDelta()
	if len(dd.GetRemovedPeerRecords())+len(dd.GetUpsertPeerRecords()) > 0 {
		dd = shallowCopy(dd)
		dd.RemovedPeerRecords, dd.UpsertPeerRecords = nil, nil
		if emptyDNSDelta(dd) {
			dd = nil
		}
	}
	if dns == d.GetDns() && dd == d.GetDnsDelta() {
		return d
	}
	out := shallowCopy(d)
	out.Dns, out.DnsDelta = dns, dd
	return out
}

// stripDNS returns c with zones[0] emptied and the derivation TTL set (c
// itself when it has no peers' zone).
func stripDNS(c *mpb.DNSConfig) *mpb.DNSConfig {
	if len(c.GetZones()) == 0 {
		return c
	}
	out := shallowCopy(c)
	out.Zones = append([]*mpb.CustomZone{{Domain: c.Zones[0].Domain}}, c.Zones[1:]...)
	out.DerivedPeerRecordTtl = peerRecordTTL
	return out
}

// CompactPeers returns r as sent to an agent that takes compact peers
// (CAPABILITY_COMPACT_PEERS): the RemotePeers of its full map and of its
// delta's upsert_peers without peer_id, and without name where the name
// equals the first label of fqdn (the agent restores it). r is not
// modified; the result shares everything else with it.
func CompactPeers(r *mpb.SyncResponse) *mpb.SyncResponse {
	full, delta := r.GetFull(), r.GetDelta()
	if len(full.GetPeers()) > 0 {
		full = shallowCopy(full)
		full.Peers = compactPeers(full.Peers)
	}
	if len(delta.GetUpsertPeers()) > 0 {
		delta = shallowCopy(delta)
		delta.UpsertPeers = compactPeers(delta.UpsertPeers)
	}
	if full == r.GetFull() && delta == r.GetDelta() {
		return r
	}
	out := shallowCopy(r)
	out.Full, out.Delta = full, delta
	return out
}

// compactPeers copies ps without peer IDs and derivable names. It lists
// RemotePeer's fields (a reflective copy would cost more than marshalling
// the map); TestCompactPeersKnowsEveryField fails when one is added.
func compactPeers(ps []*mpb.RemotePeer) []*mpb.RemotePeer {
	out := make([]*mpb.RemotePeer, len(ps))
	for i, p := range ps {
		name := p.Name
		if label, _, _ := strings.Cut(p.Fqdn, "."); p.Fqdn != "" && name == label {
			name = ""
		}
		out[i] = &mpb.RemotePeer{PublicKey: p.PublicKey, AllowedIps: p.AllowedIps, Fqdn: p.Fqdn, Name: name}
	}
	return out
}

// shallowCopy returns a new message with m's fields (sub-messages and
// lists shared, not copied), whatever fields the message gains later.
func shallowCopy[T proto.Message](m T) T {
	src := m.ProtoReflect()
	dst := src.New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dst.Set(fd, v)
		return true
	})
	return dst.Interface().(T)
}
