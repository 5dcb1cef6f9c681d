package mgmt

import (
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"petrel/management/netmap" // the agent's delta applier (client/engine uses it too)
	"petrel/proto/managementpb"
)

func rp(key, fqdn string, ips ...string) *managementpb.RemotePeer {
	return &managementpb.RemotePeer{PublicKey: key, Fqdn: fqdn, AllowedIps: ips}
}

func rec(name, typ, value string) *managementpb.SimpleRecord {
	return &managementpb.SimpleRecord{Name: name, Type: typ, Ttl: 300, Value: value}
}

// derivedDNS is a DNS config as a server sends it to an agent that derives
// the peers' zone.
func derivedDNS(domain string) *managementpb.DNSConfig {
	return &managementpb.DNSConfig{Domain: domain, DerivedPeerRecordTtl: 300, Zones: []*managementpb.CustomZone{
		{Domain: domain + "."},
		{Domain: "corp.example.", Records: []*managementpb.SimpleRecord{rec("www.corp.example.", "A", "10.0.0.80")}},
	}}
}

// zoneOf returns m's peers' zone records, failing if anything is left of
// the derivation marker.
func zoneOf(t *testing.T, m *managementpb.NetworkMap) []*managementpb.SimpleRecord {
	t.Helper()
	if m.Dns.DerivedPeerRecordTtl != 0 || len(m.Dns.Zones) != 2 || len(m.Dns.Zones[1].Records) != 1 {
		t.Fatalf("DNS config not restored as a server would send it:\n%s", prototext.Format(m.Dns))
	}
	return m.Dns.Zones[0].Records
}

func sameRecords(t *testing.T, what string, got, want []*managementpb.SimpleRecord) {
	t.Helper()
	g := &managementpb.CustomZone{Records: got}
	w := &managementpb.CustomZone{Records: want}
	if !proto.Equal(g, w) {
		t.Fatalf("%s: records\n%s\nwant\n%s", what, prototext.Format(g), prototext.Format(w))
	}
}

// The zone the agent derives is the one a server builds (one A or AAAA
// record per peer with an FQDN and a host address, sorted by value then
// name), and stays so through deltas: removals, renames, key rotation,
// repeated upserts, peers that gain or lose their FQDN, a domain change.
func TestPeerZoneDerivation(t *testing.T) {
	var z peerZone
	m := &managementpb.NetworkMap{Peers: []*managementpb.RemotePeer{
		rp("kA", "a.petrel.internal", "100.64.0.1/32"),
		rp("kB", "b.petrel.internal", "100.64.0.2/32", "10.0.0.0/24"), // routing peer
		rp("kC", "c.petrel.internal", "100.64.0.30/32"),
		rp("kD", "", "100.64.0.4/32"),                          // no label: no record
		rp("kE", "e.petrel.internal", "100.64.0.5/24"),         // not a host prefix
		rp("kF", "f.petrel.internal", "fd7a:115c::6/128"),      // IPv6: AAAA
		rp("kG", "g.petrel.internal", "::ffff:100.64.0.7/128"), // IPv4-mapped: AAAA, as servers do
	}, Dns: derivedDNS("petrel.internal")}
	z.full(m)
	sameRecords(t, "full map", zoneOf(t, m), []*managementpb.SimpleRecord{
		rec("a.petrel.internal.", "A", "100.64.0.1"),
		rec("b.petrel.internal.", "A", "100.64.0.2"),
		rec("c.petrel.internal.", "A", "100.64.0.30"),
		rec("g.petrel.internal.", "AAAA", "::ffff:100.64.0.7"),
		rec("f.petrel.internal.", "AAAA", "fd7a:115c::6"),
	})

	steps := []struct {
		name string
		d    *managementpb.NetworkMapDelta
		want []*managementpb.SimpleRecord
	}{
		{"remove, rename, rotate a key, add", &managementpb.NetworkMapDelta{
			RemovedPeers: []string{"kA", "kC"},
			UpsertPeers: []*managementpb.RemotePeer{
				rp("kB", "b2.petrel.internal", "100.64.0.2/32"),
				rp("kC2", "c.petrel.internal", "100.64.0.30/32"), // same peer, new key
				rp("kH", "h.petrel.internal", "100.64.0.8/32"),
			},
			DnsDelta: &managementpb.DNSDelta{NameserverGroupsChanged: true},
		}, []*managementpb.SimpleRecord{
			rec("b2.petrel.internal.", "A", "100.64.0.2"),
			rec("c.petrel.internal.", "A", "100.64.0.30"),
			rec("h.petrel.internal.", "A", "100.64.0.8"),
			rec("g.petrel.internal.", "AAAA", "::ffff:100.64.0.7"),
			rec("f.petrel.internal.", "AAAA", "fd7a:115c::6"),
		}},
		{"labels come and go; last upsert wins", &managementpb.NetworkMapDelta{
			UpsertPeers: []*managementpb.RemotePeer{
				rp("kD", "d.petrel.internal", "100.64.0.4/32"),
				rp("kH", "h-old.petrel.internal", "100.64.0.8/32"),
				rp("kF", "", "fd7a:115c::6/128"),
				rp("kH", "h-new.petrel.internal", "100.64.0.8/32"),
			},
		}, []*managementpb.SimpleRecord{
			rec("b2.petrel.internal.", "A", "100.64.0.2"),
			rec("c.petrel.internal.", "A", "100.64.0.30"),
			rec("d.petrel.internal.", "A", "100.64.0.4"),
			rec("h-new.petrel.internal.", "A", "100.64.0.8"),
			rec("g.petrel.internal.", "AAAA", "::ffff:100.64.0.7"),
		}},
		{"a label moves to another peer", &managementpb.NetworkMapDelta{
			RemovedPeers: []string{"kD"},
			UpsertPeers:  []*managementpb.RemotePeer{rp("kB", "d.petrel.internal", "100.64.0.2/32")},
		}, []*managementpb.SimpleRecord{
			rec("d.petrel.internal.", "A", "100.64.0.2"),
			rec("c.petrel.internal.", "A", "100.64.0.30"),
			rec("h-new.petrel.internal.", "A", "100.64.0.8"),
			rec("g.petrel.internal.", "AAAA", "::ffff:100.64.0.7"),
		}},
		{"domain change replaces the config", &managementpb.NetworkMapDelta{
			UpsertPeers: []*managementpb.RemotePeer{
				rp("kB", "d.mesh.example", "100.64.0.2/32"),
				rp("kC2", "c.mesh.example", "100.64.0.30/32"),
				rp("kH", "h-new.mesh.example", "100.64.0.8/32"),
				rp("kG", "g.mesh.example", "::ffff:100.64.0.7/128"),
			},
			Dns: derivedDNS("mesh.example"),
		}, []*managementpb.SimpleRecord{
			rec("d.mesh.example.", "A", "100.64.0.2"),
			rec("c.mesh.example.", "A", "100.64.0.30"),
			rec("h-new.mesh.example.", "A", "100.64.0.8"),
			rec("g.mesh.example.", "AAAA", "::ffff:100.64.0.7"),
		}},
		{"nothing DNS-relevant", &managementpb.NetworkMapDelta{FirewallRulesChanged: true}, nil},
	}
	for _, st := range steps {
		z.delta(st.d)
		next := netmap.Apply(m, st.d)
		if st.want == nil {
			if st.d.DnsDelta != nil || !proto.Equal(next.Dns, m.Dns) {
				t.Fatalf("%s: the zone changed: %v", st.name, st.d.DnsDelta)
			}
			continue
		}
		m = next
		sameRecords(t, st.name, zoneOf(t, m), st.want)
	}
}

// Streams of servers that send the records (older servers, or agents that
// did not ask) are handed on untouched.
func TestPeerZoneLeavesServerRecords(t *testing.T) {
	var z peerZone
	m := &managementpb.NetworkMap{
		Peers: []*managementpb.RemotePeer{rp("kA", "a.petrel.internal", "100.64.0.1/32")},
		Dns: &managementpb.DNSConfig{Domain: "petrel.internal", Zones: []*managementpb.CustomZone{
			{Domain: "petrel.internal.", Records: []*managementpb.SimpleRecord{rec("a.petrel.internal.", "A", "100.64.0.1")}}}},
	}
	want := proto.CloneOf(m)
	z.full(m)
	d := &managementpb.NetworkMapDelta{RemovedPeers: []string{"kA"},
		DnsDelta: &managementpb.DNSDelta{RemovedPeerRecords: []string{"a.petrel.internal."}}}
	wantD := proto.CloneOf(d)
	z.delta(d)
	if !proto.Equal(m, want) || !proto.Equal(d, wantD) {
		t.Fatalf("server-sent records were changed:\n%s\n%s", prototext.Format(m), prototext.Format(d))
	}
}

func TestRestoreNames(t *testing.T) {
	ps := []*managementpb.RemotePeer{
		{Fqdn: "web-1.petrel.internal"},
		{Fqdn: "db.petrel.internal", Name: "Database server"},
		{Name: "no-label"},
		{},
	}
	restoreNames(ps)
	for i, want := range []string{"web-1", "Database server", "no-label", ""} {
		if ps[i].Name != want {
			t.Errorf("peer %d: name %q, want %q", i, ps[i].Name, want)
		}
	}
}
