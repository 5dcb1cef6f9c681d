package netmap

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	mpb "petrel/proto/managementpb"
)

// compactPeers lists RemotePeer's fields by hand (for speed): a field added
// to the message must be added there too, or agents that take compact
// peers would silently lose it.
func TestCompactPeersKnowsEveryField(t *testing.T) {
	var names []string
	fields := (&mpb.RemotePeer{}).ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		names = append(names, string(fields.Get(i).Name()))
	}
	if want := []string{"public_key", "allowed_ips", "fqdn", "name", "peer_id"}; !slices.Equal(names, want) {
		t.Fatalf("RemotePeer has fields %v; compactPeers knows %v: update it", names, want)
	}
}

// The wire forms strip what they promise and nothing else, and never touch
// the snapshot's shared messages.
func TestWireFormsLeaveInputs(t *testing.T) {
	a := newAcct()
	addPeer(a, "a", ipN(1), "g")
	addPeer(a, "b", ipN(2), "g")
	a.Peers["b"].Name = "Bee" // not its label: kept
	a.Policies["p"] = policy("p", accept("all", "all"))
	s := Build(a)
	m, err := s.Map("a")
	if err != nil {
		t.Fatal(err)
	}
	full := &mpb.SyncResponse{Serial: 1, Full: m}
	d := &mpb.NetworkMapDelta{
		UpsertPeers: m.Peers,
		DnsDelta:    &mpb.DNSDelta{UpsertPeerRecords: m.Dns.Zones[0].Records, NameserverGroupsChanged: true},
		Dns:         m.Dns,
	}
	delta := &mpb.SyncResponse{Serial: 2, Delta: d}
	before := []*mpb.SyncResponse{proto.CloneOf(full), proto.CloneOf(delta)}

	sf := CompactPeers(WithoutPeerRecords(full))
	sd := CompactPeers(WithoutPeerRecords(delta))
	if !proto.Equal(full, before[0]) || !proto.Equal(delta, before[1]) {
		t.Fatal("the wire forms modified their input")
	}
	for _, c := range []*mpb.DNSConfig{sf.Full.Dns, sd.Delta.Dns} {
		if len(c.Zones[0].Records) != 0 || c.DerivedPeerRecordTtl != peerRecordTTL || c.Zones[0].Domain != "petrel.internal." {
			t.Fatalf("stripped DNS config: %v", c)
		}
	}
	if dd := sd.Delta.DnsDelta; len(dd.UpsertPeerRecords) != 0 || !dd.NameserverGroupsChanged {
		t.Fatalf("stripped DNS delta: %v", dd)
	}
	for _, ps := range [][]*mpb.RemotePeer{sf.Full.Peers, sd.Delta.UpsertPeers} {
		if len(ps) != 1 || ps[0].PeerId != "" || ps[0].Name != "Bee" || ps[0].PublicKey != "key-b" {
			t.Fatalf("compact peers: %v", ps)
		}
	}
	// Everything else is the same message, shared.
	if sf.Full.Self != m.Self || !slices.Equal(sf.Full.FirewallRules, m.FirewallRules) || sf.Serial != 1 {
		t.Fatal("the full map lost or copied other fields")
	}
	// A delta with nothing to strip is returned as is.
	plain := &mpb.SyncResponse{Serial: 3, Delta: &mpb.NetworkMapDelta{FirewallRulesChanged: true}}
	if WithoutPeerRecords(plain) != plain || CompactPeers(plain) != plain {
		t.Fatal("a message with nothing to strip was copied")
	}
}
