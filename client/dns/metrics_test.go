package dns

import (
	"net/netip"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func queryCounts(r *Resolver) map[string]uint64 {
	out := map[string]uint64{}
	for _, q := range r.Stats().Queries {
		out[q.Handler+" "+q.Rcode] = q.N
	}
	return out
}

// Every client query is counted once, by the handler that answered and
// its rcode, whichever path answered it: a UDP reader inline or replayed,
// the slow path, miekg's TCP server, or a rejection before any handler.
func TestQueryCountsOnEveryPath(t *testing.T) {
	upstream := loopbackServer(t, func(_ string, q *mdns.Msg) *mdns.Msg { return answerAddrs(q, "198.51.100.9") })
	r, addr := startLoopback(t, Config{})
	s := zoneSettings()
	s.Groups = []NameserverGroup{{ID: "up", Servers: []netip.AddrPort{upstream}, Primary: true}}
	r.Apply(s)

	for range 3 { // learnt, then replayed
		exchange(t, "udp", addr, "laptop.petrel.internal.", mdns.TypeA, 0, false)
	}
	exchange(t, "tcp", addr, "laptop.petrel.internal.", mdns.TypeA, 0, false)
	exchange(t, "udp", addr, "nope.petrel.internal.", mdns.TypeA, 1232, false)
	if m := exchange(t, "udp", addr, "www.example.org.", mdns.TypeA, 0, false); len(m.Answer) != 1 {
		t.Fatalf("upstream answer: %v", m)
	}
	c := &mdns.Client{Net: "udp", Timeout: 3 * time.Second}
	chaos := new(mdns.Msg)
	chaos.SetQuestion("version.bind.", mdns.TypeTXT)
	chaos.Question[0].Qclass = mdns.ClassCHAOS
	status := new(mdns.Msg)
	status.SetQuestion("laptop.petrel.internal.", mdns.TypeA)
	status.Opcode = mdns.OpcodeStatus
	for _, q := range []*mdns.Msg{chaos, status} {
		if _, _, err := c.Exchange(q, addr); err != nil {
			t.Fatal(err)
		}
	}

	want := map[string]uint64{
		"local-zone NOERROR": 4, "local-zone NXDOMAIN": 1, "primary NOERROR": 1,
		"server REFUSED": 1, "server NOTIMP": 1,
	}
	got := queryCounts(r)
	if len(got) != len(want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("counts %v, want %v", got, want)
		}
	}
	st := r.Stats()
	if len(st.Upstreams) != 1 || st.Upstreams[0] != (UpstreamCount{Server: upstream.String(), OK: 1}) {
		t.Fatalf("upstreams %+v", st.Upstreams)
	}
}

// Cache lookups: a fresh hit counts once whether answered by the chain or
// replayed, never for the learning probe; a name looked up on demand is a
// miss.
func TestCacheLookupCounts(t *testing.T) {
	rig := fastRig(t)
	r := rig.r
	u := memReader(t, r)
	before := r.Stats()
	pkt := packQuery(t, "api.example.net.", mdns.TypeA, qopts{id: 1, edns: 1232})
	for i := range 3 {
		if out, slow := u.handle(pkt); out == nil || slow != nil {
			t.Fatalf("query %d not answered inline", i)
		}
	}
	if u.replays != 2 {
		t.Fatalf("%d replays, want 2", u.replays)
	}
	after := r.Stats()
	if hits := after.CacheHits - before.CacheHits; hits != 3 || after.CacheMisses != before.CacheMisses {
		t.Fatalf("hits +%d, misses %d -> %d; want 3 hits, no miss", hits, before.CacheMisses, after.CacheMisses)
	}
	if n := queryCounts(r)["mgmt-cache NOERROR"]; n != 3 {
		t.Fatalf("mgmt-cache NOERROR counted %d, want 3", n)
	}

	rig.set("eu-1.relay.example.net.", "192.0.2.33")
	r.ApplyServerDomains(ServerDomains{RelayPoolRoots: []string{"relay.example.net"}})
	rig.waitIdle(t)
	before = r.Stats()
	_, slow := u.handle(packQuery(t, "eu-1.relay.example.net.", mdns.TypeA, qopts{id: 2}))
	if slow == nil {
		t.Fatal("an on-demand name was answered inline")
	}
	if m := r.serveMsg(slow, true); len(m.Answer) != 1 {
		t.Fatalf("on-demand answer: %v", m)
	}
	if after := r.Stats(); after.CacheMisses != before.CacheMisses+1 {
		t.Fatalf("misses %d -> %d, want +1", before.CacheMisses, after.CacheMisses)
	}
}
