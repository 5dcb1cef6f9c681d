package dns

import (
	"testing"

	mdns "github.com/miekg/dns"
)

func benchServe(b *testing.B, r *Resolver, name string, want string) {
	q := new(mdns.Msg)
	q.SetQuestion(name, mdns.TypeA)
	q.SetEdns0(1232, false)
	w := &discardWriter{udp: true}
	r.serveWire(w, q)
	if w.last == nil || len(w.last.Answer) == 0 || w.last.Answer[len(w.last.Answer)-1].(*mdns.A).A.String() != want {
		b.Fatalf("unexpected answer %v", w.last)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.serveWire(w, q)
	}
}

// BenchmarkLocalZoneHit: a peer-name query answered by the local zone,
// in-process (unpacked query in, packed answer out), behind the cache link.
func BenchmarkLocalZoneHit(b *testing.B) {
	r := newTestResolver(b, Config{})
	s := zoneSettings()
	s.Groups = nil
	for i := 0; i < 1000; i++ { // a realistic peer zone
		s.Zones[0].Records = append(s.Zones[0].Records, Record{Name: "peer" + itoa(i), Type: "A", Value: "100.64.3." + itoa(i%250)})
	}
	r.Apply(s)
	benchServe(b, r, "laptop.petrel.internal.", "100.64.0.5")
}

// BenchmarkCacheHit: a management-domain name answered fresh from the cache.
func BenchmarkCacheHit(b *testing.B) {
	r := fuzzResolver(b)
	r.ApplyServerDomains(ServerDomains{Management: []string{"api.example.net"}})
	q := new(mdns.Msg)
	q.SetQuestion("api.example.net.", mdns.TypeA)
	for i := 0; i < 500; i++ { // wait for the initial resolution
		if resp, info := r.resolveSafe(b.Context(), q); info.How == "cache fresh (bypass "+bypassNS+")" && len(resp.Answer) == 1 {
			break
		}
	}
	benchServe(b, r, "api.example.net.", "192.0.2.1")
}

// benchPacket measures the UDP reader's packet path (udp.go): wire query
// in, wire answer out, no socket.
func benchPacket(b *testing.B, r *Resolver, name string, want string) {
	q := new(mdns.Msg)
	q.SetQuestion(name, mdns.TypeA)
	q.SetEdns0(1232, false)
	pkt, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	u := r.newUDPReader(nil)
	out, slow := u.handle(pkt)
	m := new(mdns.Msg)
	if slow != nil || m.Unpack(out) != nil || len(m.Answer) == 0 || m.Answer[len(m.Answer)-1].(*mdns.A).A.String() != want {
		b.Fatalf("unexpected answer %v (slow %v)", m, slow)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u.handle(pkt)
	}
}

func BenchmarkPacketLocalZoneHit(b *testing.B) {
	r := newTestResolver(b, Config{})
	s := zoneSettings()
	s.Groups = nil
	for i := 0; i < 1000; i++ {
		s.Zones[0].Records = append(s.Zones[0].Records, Record{Name: "peer" + itoa(i), Type: "A", Value: "100.64.3." + itoa(i%250)})
	}
	r.Apply(s)
	benchPacket(b, r, "laptop.petrel.internal.", "100.64.0.5")
}

func BenchmarkPacketCacheHit(b *testing.B) {
	r := fuzzResolver(b)
	r.ApplyServerDomains(ServerDomains{Management: []string{"api.example.net"}})
	q := new(mdns.Msg)
	q.SetQuestion("api.example.net.", mdns.TypeA)
	for i := 0; i < 500; i++ {
		if resp, info := r.resolveSafe(b.Context(), q); info.How == "cache fresh (bypass "+bypassNS+")" && len(resp.Answer) == 1 {
			break
		}
	}
	benchPacket(b, r, "api.example.net.", "192.0.2.1")
}
