package dns

import (
	"testing"
	"time"

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
// in, wire answer out, no socket. Repeats of a plain query are replayed
// from the reader's pre-encoded answers (answers.go); with fullPath the
// query carries an NSID option, which the fast path does not read, so
// each one is unpacked, resolved and packed.
func benchPacket(b *testing.B, r *Resolver, name string, want string, fullPath bool) {
	q := new(mdns.Msg)
	q.SetQuestion(name, mdns.TypeA)
	q.SetEdns0(1232, false)
	if fullPath {
		q.IsEdns0().Option = []mdns.EDNS0{&mdns.EDNS0_NSID{Code: mdns.EDNS0NSID}}
	}
	pkt, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	u := memReader(b, r)
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
	b.StopTimer()
	if replayed := u.replays > 0; replayed == fullPath {
		b.Fatalf("%d answers replayed", u.replays)
	}
}

func packetZoneResolver(b *testing.B) *Resolver {
	r := newTestResolver(b, Config{})
	s := zoneSettings()
	s.Groups = nil
	for i := 0; i < 1000; i++ {
		s.Zones[0].Records = append(s.Zones[0].Records, Record{Name: "peer" + itoa(i), Type: "A", Value: "100.64.3." + itoa(i%250)})
	}
	r.Apply(s)
	return r
}

func packetCacheResolver(b *testing.B) *Resolver {
	r := fuzzResolver(b)
	r.ApplyServerDomains(ServerDomains{Management: []string{"api.example.net"}})
	q := new(mdns.Msg)
	q.SetQuestion("api.example.net.", mdns.TypeA)
	for i := 0; i < 500; i++ {
		if resp, info := r.resolveSafe(b.Context(), q); info.How == "cache fresh (bypass "+bypassNS+")" && len(resp.Answer) == 1 {
			break
		}
	}
	// Every lookup finished: a late one would retire the kept answers.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		r.cache.mu.Lock()
		idle := len(r.cache.flights) == 0
		r.cache.mu.Unlock()
		if idle {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("cache lookups still running")
		}
	}
	return r
}

func BenchmarkPacketLocalZoneHit(b *testing.B) {
	benchPacket(b, packetZoneResolver(b), "laptop.petrel.internal.", "100.64.0.5", false)
}

func BenchmarkPacketLocalZoneHitFullPath(b *testing.B) {
	benchPacket(b, packetZoneResolver(b), "laptop.petrel.internal.", "100.64.0.5", true)
}

func BenchmarkPacketCacheHit(b *testing.B) {
	benchPacket(b, packetCacheResolver(b), "api.example.net.", "192.0.2.1", false)
}

func BenchmarkPacketCacheHitFullPath(b *testing.B) {
	benchPacket(b, packetCacheResolver(b), "api.example.net.", "192.0.2.1", true)
}
