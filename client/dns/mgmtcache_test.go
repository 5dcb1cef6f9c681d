package dns

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

const (
	bypassNS  = "192.0.2.1:53"    // the host's original nameserver (via memNet)
	primaryNS = "198.51.100.1:53" // a primary nameserver group
)

// cacheRig is a resolver whose original nameserver (used by the bypass and
// the -100 handler) and primary group are fake in-memory upstreams.
type cacheRig struct {
	r       *Resolver
	clk     *fakeClock
	net     *memNet
	bypassQ counter // queries seen by the original nameserver
	groupQ  counter // queries seen by the primary group

	mu      sync.Mutex
	answers map[string][]string // name → addresses (bypass)
	fail    map[string]int      // name → rcode to return instead
	gate    chan struct{}       // when non-nil, bypass answers wait for it
}

func newCacheRig(t *testing.T, mutate func(*Config)) *cacheRig {
	rig := &cacheRig{clk: newFakeClock(), net: newMemNet(t), answers: map[string][]string{}, fail: map[string]int{}}
	rig.net.handle(bypassNS, func(_ string, q *mdns.Msg) *mdns.Msg {
		rig.bypassQ.add(q)
		rig.mu.Lock()
		gate := rig.gate
		rig.mu.Unlock()
		if gate != nil {
			<-gate
		}
		rig.mu.Lock()
		defer rig.mu.Unlock()
		name := q.Question[0].Name
		if rc, ok := rig.fail[name]; ok {
			return rcodeReply(q, rc)
		}
		addrs, ok := rig.answers[name]
		if !ok {
			return rcodeReply(q, mdns.RcodeNameError)
		}
		return answerAddrs(q, addrs...)
	})
	rig.net.handle(primaryNS, func(_ string, q *mdns.Msg) *mdns.Msg {
		rig.groupQ.add(q)
		return answerAddrs(q, "203.0.113.77", "2001:db8::77")
	})
	cfg := Config{
		Original: []netip.AddrPort{netip.MustParseAddrPort(bypassNS)},
		Dial:     rig.net.Dial,
		Clock:    rig.clk.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	rig.r = newTestResolver(t, cfg)
	rig.r.Apply(Settings{Groups: []NameserverGroup{{ID: "p", Servers: []netip.AddrPort{netip.MustParseAddrPort(primaryNS)}, Primary: true}}})
	return rig
}

func (rig *cacheRig) set(name string, addrs ...string) {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	rig.answers[name] = addrs
	delete(rig.fail, name)
}

func (rig *cacheRig) failWith(name string, rcode int) {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	rig.fail[name] = rcode
}

func (rig *cacheRig) hold() {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	rig.gate = make(chan struct{})
}

func (rig *cacheRig) release() {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	close(rig.gate)
	rig.gate = nil
}

// idle reports whether the cache has no lookup in flight.
func (rig *cacheRig) idle() bool {
	rig.r.cache.mu.Lock()
	defer rig.r.cache.mu.Unlock()
	return len(rig.r.cache.flights) == 0
}

func (rig *cacheRig) waitIdle(t *testing.T) {
	t.Helper()
	eventually(t, "cache lookups to finish", rig.idle)
}

// cached waits for the initial resolution of name (A and AAAA).
func (rig *cacheRig) cached(t *testing.T, name string) {
	t.Helper()
	eventually(t, "initial resolution of "+name, func() bool {
		return rig.bypassQ.get(name+" A") >= 1 && rig.bypassQ.get(name+" AAAA") >= 1 && rig.idle()
	})
}

func mgmtOnly(names ...string) ServerDomains {
	return ServerDomains{Management: names}
}

// Point 1+2: a fresh hit is answered from the cache without any lookup.
func TestCacheFreshHitWithoutLookup(t *testing.T) {
	rig := newCacheRig(t, nil)
	rig.set("api.example.net.", "192.0.2.10", "2001:db8::10")
	rig.r.ApplyServerDomains(mgmtOnly("API.example.net")) // case and missing dot are normalised
	rig.cached(t, "api.example.net.")

	for i := 0; i < 3; i++ {
		for _, qt := range []uint16{mdns.TypeA, mdns.TypeAAAA} {
			resp, info := ask(t, rig.r, "api.example.net", qt)
			if info.Handler != "mgmt-cache" || !strings.HasPrefix(info.How, "cache fresh") {
				t.Fatalf("answered by %+v", info)
			}
			if resp.Authoritative || !resp.RecursionAvailable || len(resp.Answer) != 1 {
				t.Fatalf("flags/answer wrong: %v", resp)
			}
		}
		rig.clk.Advance(time.Minute)
	}
	if n := rig.bypassQ.total(); n != 2 {
		t.Fatalf("upstream saw %d queries, want 2 (the initial A and AAAA)", n)
	}
	if rig.groupQ.total() != 0 {
		t.Fatal("the chain was asked")
	}
}

// Point 2: a stale hit is answered at once and refreshed exactly once, even
// under 50 concurrent queries.
func TestCacheStaleServedAndRefreshedOnce(t *testing.T) {
	rig := newCacheRig(t, nil)
	rig.set("api.example.net.", "192.0.2.10")
	rig.r.ApplyServerDomains(mgmtOnly("api.example.net"))
	rig.cached(t, "api.example.net.")

	rig.clk.Advance(6 * time.Minute)
	rig.set("api.example.net.", "192.0.2.11")
	rig.hold() // the refresh blocks upstream until released

	var wg sync.WaitGroup
	var stale atomic.Int32
	start := time.Now()
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, info := ask(t, rig.r, "api.example.net", mdns.TypeA)
			if strings.HasPrefix(info.How, "cache stale") && slices.Equal(addrsOf(resp), []string{"192.0.2.10"}) && resp.Answer[0].Header().Ttl == staleAnswerTTL {
				stale.Add(1)
			}
		}()
	}
	wg.Wait()
	if time.Since(start) > time.Second {
		t.Fatalf("stale answers took %v: they waited for the refresh", time.Since(start))
	}
	if stale.Load() != 50 {
		t.Fatalf("%d/50 queries got the stale answer", stale.Load())
	}
	eventually(t, "the refresh to reach upstream", func() bool { return rig.bypassQ.get("api.example.net. A") == 2 })
	rig.release()
	rig.waitIdle(t)
	if n := rig.bypassQ.get("api.example.net. A"); n != 2 {
		t.Fatalf("upstream saw %d A queries, want 2 (initial + one refresh)", n)
	}
	resp, info := ask(t, rig.r, "api.example.net", mdns.TypeA)
	if !strings.HasPrefix(info.How, "cache fresh") || addrsOf(resp)[0] != "192.0.2.11" {
		t.Fatalf("after refresh: %v %+v", addrsOf(resp), info)
	}
}

// Point 2: a failed refresh backs off 30 s and the stale answer keeps serving.
func TestCacheFailedRefreshBacksOff(t *testing.T) {
	rig := newCacheRig(t, nil)
	rig.set("api.example.net.", "192.0.2.10")
	rig.r.ApplyServerDomains(mgmtOnly("api.example.net"))
	rig.cached(t, "api.example.net.")
	rig.failWith("api.example.net.", mdns.RcodeServerFailure)
	rig.clk.Advance(6 * time.Minute)

	checkStale := func() {
		t.Helper()
		resp, info := ask(t, rig.r, "api.example.net", mdns.TypeA)
		if !strings.HasPrefix(info.How, "cache stale") || !slices.Equal(addrsOf(resp), []string{"192.0.2.10"}) {
			t.Fatalf("want stale 192.0.2.10, got %v %+v", addrsOf(resp), info)
		}
		rig.waitIdle(t)
	}
	checkStale() // triggers refresh #1, which fails
	if n := rig.bypassQ.get("api.example.net. A"); n != 2 {
		t.Fatalf("A queries %d, want 2", n)
	}
	rig.clk.Advance(29 * time.Second)
	checkStale() // inside the back-off: no lookup
	checkStale()
	if n := rig.bypassQ.get("api.example.net. A"); n != 2 {
		t.Fatalf("A queries %d during back-off, want 2", n)
	}
	if st := rig.r.Status(); st.Cache[0].LastError == "" || st.Cache[0].RetryAt == "" || !st.Cache[0].Stale {
		t.Fatalf("status does not show the failure: %+v", st.Cache[0])
	}
	rig.clk.Advance(2 * time.Second)
	checkStale() // back-off over: refresh #2, fails again
	if n := rig.bypassQ.get("api.example.net. A"); n != 3 {
		t.Fatalf("A queries %d after back-off, want 3", n)
	}
	rig.set("api.example.net.", "192.0.2.12")
	rig.clk.Advance(31 * time.Second)
	checkStale() // refresh #3 succeeds
	resp, info := ask(t, rig.r, "api.example.net", mdns.TypeA)
	if !strings.HasPrefix(info.How, "cache fresh") || addrsOf(resp)[0] != "192.0.2.12" {
		t.Fatalf("after recovery: %v %+v", addrsOf(resp), info)
	}
	if rig.groupQ.total() != 0 {
		t.Fatal("stale entry was not served: the chain was asked")
	}
}

// Point 2: NODATA for one family is an answer, not a failure.
func TestCacheNODATAIsNotFailure(t *testing.T) {
	rig := newCacheRig(t, nil)
	rig.set("v4only.example.net.", "192.0.2.20") // AAAA → NOERROR, no answer
	rig.r.ApplyServerDomains(mgmtOnly("v4only.example.net"))
	rig.cached(t, "v4only.example.net.")
	resp, info := ask(t, rig.r, "v4only.example.net", mdns.TypeAAAA)
	if info.Handler != "mgmt-cache" || resp.Rcode != mdns.RcodeSuccess || len(resp.Answer) != 0 {
		t.Fatalf("AAAA: rcode %d answers %d handler %+v", resp.Rcode, len(resp.Answer), info)
	}
	rig.clk.Advance(6 * time.Minute)
	ask(t, rig.r, "v4only.example.net", mdns.TypeAAAA) // stale → refresh, NODATA again
	rig.waitIdle(t)
	_, info = ask(t, rig.r, "v4only.example.net", mdns.TypeAAAA)
	if !strings.HasPrefix(info.How, "cache fresh") {
		t.Fatalf("NODATA refresh was treated as a failure: %+v", info)
	}
	if st := rig.r.Status(); st.Cache[1].LastError != "" {
		t.Fatalf("status shows an error for NODATA: %+v", st.Cache[1])
	}
}

// Point 3: the bypass is preferred over the chain when present.
func TestCacheUsesBypassWhenPresent(t *testing.T) {
	rig := newCacheRig(t, nil)
	rig.set("api.example.net.", "192.0.2.10")
	rig.r.ApplyServerDomains(mgmtOnly("api.example.net"))
	rig.cached(t, "api.example.net.")
	resp, info := ask(t, rig.r, "api.example.net", mdns.TypeA)
	if addrsOf(resp)[0] != "192.0.2.10" || !strings.Contains(info.How, "bypass "+bypassNS) {
		t.Fatalf("got %v %+v", addrsOf(resp), info)
	}
	if rig.groupQ.total() != 0 {
		t.Fatalf("the primary group was asked %d times", rig.groupQ.total())
	}
	for _, d := range rig.net.dialed() {
		if strings.Contains(d, "198.51.100.1") {
			t.Fatalf("dialed the group: %v", rig.net.dialed())
		}
	}
}

// Point 3: without a bypass the cache resolves through the chain's
// upstream handlers and still serves stale entries when they fail.
func TestCacheFallsBackToChainWithoutBypass(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"NoBypass", func(c *Config) { c.NoBypass = true }},
		{"only loopback originals", func(c *Config) {
			c.Original = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.53:53")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newCacheRig(t, tc.mutate)
			if rig.r.bypass != nil {
				t.Fatal("a bypass was built")
			}
			rig.r.ApplyServerDomains(mgmtOnly("api.example.net"))
			eventually(t, "resolution via chain", func() bool { return rig.groupQ.total() == 2 && rig.idle() })
			resp, info := ask(t, rig.r, "api.example.net", mdns.TypeA)
			if addrsOf(resp)[0] != "203.0.113.77" || info.How != "cache fresh (chain group:p)" {
				t.Fatalf("got %v %+v", addrsOf(resp), info)
			}
			// The chain breaks: stale entries keep serving.
			rig.net.handle(primaryNS, func(string, *mdns.Msg) *mdns.Msg { return nil })
			rig.clk.Advance(time.Hour)
			resp, info = ask(t, rig.r, "api.example.net", mdns.TypeA)
			if addrsOf(resp)[0] != "203.0.113.77" || !strings.HasPrefix(info.How, "cache stale") {
				t.Fatalf("got %v %+v", addrsOf(resp), info)
			}
			rig.waitIdle(t)
		})
	}
}

// Point 3: the bypass builder.
func TestBypassServers(t *testing.T) {
	ap := netip.MustParseAddrPort
	own := []netip.AddrPort{ap("100.64.0.5:53"), ap("127.0.0.1:0")}
	for _, tc := range []struct {
		name     string
		original []netip.AddrPort
		want     []netip.AddrPort
	}{
		{"empty", nil, nil},
		{"loopback v4", []netip.AddrPort{ap("127.0.0.53:53")}, nil},
		{"loopback v6", []netip.AddrPort{ap("[::1]:53")}, nil},
		{"v4-mapped loopback", []netip.AddrPort{ap("[::ffff:127.0.0.1]:53")}, nil},
		{"unspecified", []netip.AddrPort{ap("0.0.0.0:53"), ap("[::]:53")}, nil},
		{"own listener any port", []netip.AddrPort{ap("100.64.0.5:53"), ap("100.64.0.5:5353")}, nil},
		{"invalid", []netip.AddrPort{{}}, nil},
		{"kept, port 0 is 53, dedup, order", []netip.AddrPort{ap("192.168.1.1:0"), ap("127.0.0.1:53"), ap("[2001:db8::1]:53"), ap("192.168.1.1:53")},
			[]netip.AddrPort{ap("192.168.1.1:53"), ap("[2001:db8::1]:53")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := bypassServers(tc.original, own)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			b := newBypass(tc.original, own, &exchanger{})
			if (b == nil) != (len(tc.want) == 0) {
				t.Fatalf("newBypass nil=%v for %v", b == nil, tc.want)
			}
		})
	}
}

// Point 4: the pool root is an exact name; its subdomains resolve on demand
// once (concurrent misses share one lookup) and are then served from cache.
func TestPoolRootSubdomainsOnDemand(t *testing.T) {
	rig := newCacheRig(t, nil)
	rig.set("relay.example.net.", "192.0.2.30")
	rig.set("eu-1.relay.example.net.", "192.0.2.31")
	rig.r.ApplyServerDomains(ServerDomains{RelayPoolRoots: []string{"relay.example.net"}})
	rig.cached(t, "relay.example.net.")
	if _, info := ask(t, rig.r, "relay.example.net", mdns.TypeA); !strings.HasPrefix(info.How, "cache fresh") {
		t.Fatalf("root: %+v", info)
	}
	if n := rig.bypassQ.get("eu-1.relay.example.net. A"); n != 0 {
		t.Fatal("subdomain resolved before being asked")
	}

	rig.hold()
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, info := ask(t, rig.r, "eu-1.relay.example.net", mdns.TypeA)
			if info.Handler == "mgmt-cache" && slices.Equal(addrsOf(resp), []string{"192.0.2.31"}) {
				ok.Add(1)
			}
		}()
	}
	eventually(t, "the on-demand lookup", func() bool { return rig.bypassQ.get("eu-1.relay.example.net. A") == 1 })
	time.Sleep(20 * time.Millisecond) // let every query join the flight
	rig.release()
	wg.Wait()
	if ok.Load() != 20 {
		t.Fatalf("%d/20 misses answered from the on-demand lookup", ok.Load())
	}
	if n := rig.bypassQ.get("eu-1.relay.example.net. A"); n != 1 {
		t.Fatalf("%d lookups for concurrent misses, want 1", n)
	}
	_, info := ask(t, rig.r, "eu-1.relay.example.net", mdns.TypeA)
	if !strings.HasPrefix(info.How, "cache fresh") {
		t.Fatalf("second query: %+v", info)
	}
	if n := rig.bypassQ.get("eu-1.relay.example.net. A"); n != 1 {
		t.Fatalf("cached subdomain looked up again (%d)", n)
	}
	st := rig.r.Status()
	if i := slices.IndexFunc(st.Cache, func(c CacheEntryStatus) bool { return c.Name == "eu-1.relay.example.net." }); i < 0 || !st.Cache[i].OnDemand {
		t.Fatalf("status: %+v", st.Cache)
	}
}

// Point 4: a name that is both exact and under a pool root is served from
// its existing entry; the on-demand path does not replace it.
func TestOnDemandNeverOverwritesEntry(t *testing.T) {
	rig := newCacheRig(t, nil)
	rig.set("relay.example.net.", "192.0.2.30")
	rig.set("signal.relay.example.net.", "192.0.2.40")
	rig.r.ApplyServerDomains(ServerDomains{RelayPoolRoots: []string{"relay.example.net"}, Signal: []string{"signal.relay.example.net"}})
	rig.cached(t, "signal.relay.example.net.")
	rig.set("signal.relay.example.net.", "192.0.2.99")
	resp, info := ask(t, rig.r, "signal.relay.example.net", mdns.TypeA)
	if addrsOf(resp)[0] != "192.0.2.40" || !strings.HasPrefix(info.How, "cache fresh") {
		t.Fatalf("got %v %+v", addrsOf(resp), info)
	}
	if n := rig.bypassQ.get("signal.relay.example.net. A"); n != 1 {
		t.Fatalf("%d lookups, want 1", n)
	}
}

// Point 1: a subdomain of a cached non-pool name is passed on.
func TestNonPoolSubdomainPassesOn(t *testing.T) {
	rig := newCacheRig(t, nil)
	rig.set("api.example.net.", "192.0.2.10")
	rig.set("x.api.example.net.", "192.0.2.66")
	rig.r.ApplyServerDomains(mgmtOnly("api.example.net"))
	rig.cached(t, "api.example.net.")
	resp, info := ask(t, rig.r, "x.api.example.net", mdns.TypeA)
	if info.Handler != "group:p" || addrsOf(resp)[0] != "203.0.113.77" {
		t.Fatalf("got %v %+v", addrsOf(resp), info)
	}
	if rig.bypassQ.get("x.api.example.net. A") != 0 {
		t.Fatal("the cache looked the subdomain up")
	}
}

// Point 4: on-demand failures and empty answers pass on down the chain and
// are not cached.
func TestOnDemandErrorsAndEmptyPassOn(t *testing.T) {
	rig := newCacheRig(t, nil)
	rig.set("relay.example.net.", "192.0.2.30")
	rig.set("empty.relay.example.net.") // NOERROR, no address
	rig.failWith("broken.relay.example.net.", mdns.RcodeServerFailure)
	rig.r.ApplyServerDomains(ServerDomains{RelayPoolRoots: []string{"relay.example.net"}})
	rig.cached(t, "relay.example.net.")
	for _, name := range []string{"empty.relay.example.net", "broken.relay.example.net", "missing.relay.example.net"} {
		resp, info := ask(t, rig.r, name, mdns.TypeA)
		if info.Handler != "group:p" || addrsOf(resp)[0] != "203.0.113.77" {
			t.Fatalf("%s: got %v %+v", name, addrsOf(resp), info)
		}
		if rig.bypassQ.get(name+". A") != 1 {
			t.Fatalf("%s: on-demand lookups %d", name, rig.bypassQ.get(name+". A"))
		}
	}
	rig.waitIdle(t)
	for _, c := range rig.r.Status().Cache {
		if c.Name != "relay.example.net." {
			t.Fatalf("cached %s", c.Name)
		}
	}
	// Within the back-off the failed name passes on without a lookup.
	ask(t, rig.r, "broken.relay.example.net", mdns.TypeA)
	if rig.bypassQ.get("broken.relay.example.net. A") != 1 {
		t.Fatal("failed on-demand name retried inside the back-off")
	}
}
