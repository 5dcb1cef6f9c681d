package dns

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"go.uber.org/goleak"
)

// slowRig is a resolver on loopback with a local zone and a nameserver
// group for slow.example whose upstream (a real UDP server) holds every
// query until release.
type slowRig struct {
	r       *Resolver
	addr    string
	mu      sync.Mutex
	gate    chan struct{}
	upstrmQ counter
}

func newSlowRig(t *testing.T) *slowRig {
	rig := &slowRig{gate: make(chan struct{})}
	up := loopbackServer(t, func(_ string, q *mdns.Msg) *mdns.Msg {
		rig.upstrmQ.add(q)
		rig.mu.Lock()
		gate := rig.gate
		rig.mu.Unlock()
		<-gate
		return answerAddrs(q, "203.0.113.9")
	})
	t.Cleanup(rig.release) // before the upstream's cleanup: a failed test must not hang it
	r := newTestResolver(t, Config{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}})
	r.udpReaders = 2                  // two SO_REUSEPORT sockets: the slow path must block neither
	r.setTryTimeout(20 * time.Second) // slow queries stay in flight until released (or Close)
	s := zoneSettings()
	s.Groups = []NameserverGroup{group("slow", false, []string{"slow.example"}, up)}
	r.Apply(s)
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	rig.r, rig.addr = r, r.Addrs()[0].String()
	return rig
}

func (rig *slowRig) release() {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	close(rig.gate)
	rig.gate = make(chan struct{})
}

// sendSlow sends n queries for slow.example names from one socket, IDs
// 1..n, without waiting for answers.
func (rig *slowRig) sendSlow(t *testing.T, n int) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	to := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(rig.addr))
	for i := 1; i <= n; i++ {
		q := new(mdns.Msg)
		q.SetQuestion(fmt.Sprintf("h%d.slow.example.", i), mdns.TypeA)
		q.Id = uint16(i)
		wire, _ := q.Pack()
		if _, err := c.WriteToUDP(wire, to); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// Many clients, a blocked upstream: the readers hand the slow queries off
// and keep answering local-zone queries at once; once the upstream answers,
// every slow query gets its answer.
func TestUDPSlowQueriesDoNotBlockReaders(t *testing.T) {
	rig := newSlowRig(t)
	const slow = 64 // far more than the readers
	c := rig.sendSlow(t, slow)
	eventually(t, "slow queries at the upstream", func() bool { return rig.upstrmQ.total() == slow })
	if n := rig.r.slow.Load(); n != slow {
		t.Fatalf("%d slow-path queries in flight, want %d", n, slow)
	}

	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for w := 0; w < 16; w++ { // a socket per client: spread over the readers' sockets
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cl := &mdns.Client{Net: "udp", Timeout: time.Second}
			for i := 0; i < 20; i++ {
				q := new(mdns.Msg)
				q.SetQuestion("laptop.petrel.internal.", mdns.TypeA)
				resp, rtt, err := cl.Exchange(q, rig.addr)
				if err != nil || len(addrsOf(resp)) != 1 || addrsOf(resp)[0] != "100.64.0.5" {
					errc <- fmt.Errorf("client %d query %d: %v %v", w, i, resp, err)
					return
				}
				if rtt > 500*time.Millisecond {
					errc <- fmt.Errorf("client %d query %d: local-zone answer took %v", w, i, rtt)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if n := rig.r.slow.Load(); n != slow {
		t.Fatalf("slow queries finished early: %d in flight", n)
	}

	rig.release()
	got := map[uint16]bool{}
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < slow {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("%d/%d slow answers: %v", len(got), slow, err)
		}
		m := new(mdns.Msg)
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("h%d.slow.example.", m.Id)
		if m.Rcode != mdns.RcodeSuccess || len(m.Question) != 1 || m.Question[0].Name != want || fmt.Sprint(addrsOf(m)) != "[203.0.113.9]" {
			t.Fatalf("slow answer %v", m)
		}
		got[m.Id] = true
	}
	eventually(t, "slow path drained", func() bool { return rig.r.slow.Load() == 0 })
}

// Close with slow queries in flight returns promptly and leaves no
// goroutine behind (readers and slow-path goroutines).
func TestUDPCloseWithSlowQueriesInFlight(t *testing.T) {
	rig := newSlowRig(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rig.sendSlow(t, 32)
	eventually(t, "slow queries at the upstream", func() bool { return rig.upstrmQ.total() == 32 })
	exchange(t, "udp", rig.addr, "laptop.petrel.internal.", mdns.TypeA, 0, false)
	done := make(chan struct{})
	start := time.Now()
	go func() { rig.r.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close blocked on slow queries")
	}
	if n := rig.r.slow.Load(); n != 0 {
		t.Fatalf("%d slow queries still counted after Close", n)
	}
	t.Logf("Close took %v", time.Since(start))
	rig.release() // let the upstream's handlers go
}

// inlinePanic panics on the inline pass (it claims to be inline-safe).
type inlinePanic struct{}

func (inlinePanic) Name() string { return "inline-panic" }
func (inlinePanic) inlineSafe()  {}
func (inlinePanic) ServeDNS(context.Context, *mdns.Msg) (*mdns.Msg, string) {
	panic("inline handler bug")
}

// A handler panic on a reader costs one SERVFAIL; the readers go on.
func TestUDPPanicIsServfailReaderSurvives(t *testing.T) {
	r, addr := startLoopback(t, Config{})
	s := zoneSettings()
	s.Groups = nil
	r.Apply(s)
	st := r.compile(s)
	st.chain = newChain(append(st.chain.links,
		link{prio: PrioRoute, domain: "boom.example.", h: inlinePanic{}},
		link{prio: PrioRoute, domain: "bang.example.", h: panicHandler{}}, // slow path
	))
	r.state.Store(st)
	for i := 0; i < 3*r.udpReaders; i++ { // a fresh socket each: every reader gets some
		for _, name := range []string{"x.boom.example.", "x.bang.example."} {
			if resp := exchange(t, "udp", addr, name, mdns.TypeA, 0, false); resp.Rcode != mdns.RcodeServerFailure {
				t.Fatalf("%s: %v", name, resp)
			}
		}
	}
	for i := 0; i < 3*r.udpReaders; i++ {
		if resp := exchange(t, "udp", addr, "laptop.petrel.internal.", mdns.TypeA, 0, false); len(resp.Answer) != 1 {
			t.Fatalf("after panics: %v", resp)
		}
	}
}

// The inline pass stops before any handler that does I/O.
func TestInlinePassNeedsIO(t *testing.T) {
	rig := newCacheRig(t, nil)
	rig.set("api.example.net.", "192.0.2.10")
	s := zoneSettings()
	s.ManagementHost = "api.example.net"
	s.Groups = []NameserverGroup{{ID: "p", Servers: []netip.AddrPort{netip.MustParseAddrPort(primaryNS)}, Primary: true}}
	rig.r.Apply(s)
	rig.cached(t, "api.example.net.")
	ictx := inlineCtx(context.Background())
	for _, tc := range []struct {
		name   string
		qtype  uint16
		inline bool
	}{
		{"laptop.petrel.internal.", mdns.TypeA, true},    // local zone
		{"nope.petrel.internal.", mdns.TypeA, true},      // NXDOMAIN from the zone
		{"laptop.", mdns.TypeA, true},                    // search domain
		{"alias.corp.example.", mdns.TypeA, true},        // CNAME chain inside the zones
		{"5.0.64.100.in-addr.arpa.", mdns.TypePTR, true}, // overlay reverse zone
		{"api.example.net.", mdns.TypeA, true},           // cache hit
		{"www.example.org.", mdns.TypeA, false},          // primary group
		{"ext.corp.example.", mdns.TypeA, false},         // CNAME leaving the zones
		{"signal.example.net.", mdns.TypeA, false},       // not a cache name: group
		{"1.0.0.10.in-addr.arpa.", mdns.TypePTR, false},  // outside the overlay: group
	} {
		q := new(mdns.Msg)
		q.SetQuestion(tc.name, tc.qtype)
		before := rig.groupQ.total() + rig.bypassQ.total()
		resp, _ := rig.r.resolve(ictx, q)
		if got := resp != needIO; got != tc.inline {
			t.Errorf("%s: inline %v, want %v (%v)", tc.name, got, tc.inline, resp)
		}
		if after := rig.groupQ.total() + rig.bypassQ.total(); after != before {
			t.Errorf("%s: the inline pass reached an upstream", tc.name)
		}
	}
	// A cache miss on the inline pass starts nothing.
	rig.set("new.example.net.", "192.0.2.11")
	rig.r.ApplyServerDomains(mgmtOnly("api.example.net", "new.example.net"))
	rig.waitIdle(t)
	rig.r.cache.mu.Lock()
	delete(rig.r.cache.entries, cacheKey{"new.example.net.", mdns.TypeA})
	rig.r.cache.mu.Unlock()
	q := new(mdns.Msg)
	q.SetQuestion("new.example.net.", mdns.TypeA)
	if resp, _ := rig.r.resolve(ictx, q); resp != needIO {
		t.Fatalf("cache miss inline: %v", resp)
	}
	if !rig.idle() {
		t.Fatal("the inline pass started a lookup")
	}
	if resp, info := rig.r.resolve(context.Background(), q); len(resp.Answer) != 1 || info.Handler != "mgmt-cache" {
		t.Fatalf("slow pass: %v %+v", resp, info)
	}
}

// Datagrams the miekg server ignored or rejected get the same treatment.
func TestUDPRejects(t *testing.T) {
	r := newTestResolver(t, Config{})
	r.Apply(bigZone(1))
	u := memReader(t, r)
	q := new(mdns.Msg)
	q.SetQuestion("small.corp.example.", mdns.TypeA)
	q.Id = 0x1234
	good, _ := q.Pack()
	hdr := func(bits uint16, counts ...uint16) []byte {
		b := make([]byte, 12)
		binary.BigEndian.PutUint16(b, 0x1234)
		binary.BigEndian.PutUint16(b[2:], bits)
		for i, c := range counts {
			binary.BigEndian.PutUint16(b[4+2*i:], c)
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		pkt    []byte
		rcode  int // -1: no reply
		opcode int
	}{
		{"short", good[:11], -1, 0},
		{"response", append(hdr(1<<15|1<<8, 1), good[12:]...), -1, 0},
		{"update", hdr(uint16(mdns.OpcodeUpdate)<<11|1<<8, 1), mdns.RcodeNotImplemented, mdns.OpcodeUpdate},
		{"no question", hdr(1 << 8), mdns.RcodeFormatError, 0},
		{"truncated name", good[:16], mdns.RcodeFormatError, 0},
		{"three additional", hdr(1<<8, 1, 0, 0, 3), mdns.RcodeFormatError, 0},
		{"good", good, mdns.RcodeSuccess, 0},
	} {
		out, slow := u.handle(tc.pkt)
		if slow != nil {
			t.Fatalf("%s: went to the slow path", tc.name)
		}
		if tc.rcode < 0 {
			if out != nil {
				t.Fatalf("%s: replied", tc.name)
			}
			continue
		}
		m := new(mdns.Msg)
		if err := m.Unpack(out); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if m.Id != 0x1234 || !m.Response || m.Rcode != tc.rcode || m.Opcode != tc.opcode || (tc.rcode != 0) != (len(m.Answer) == 0) {
			t.Fatalf("%s: %v", tc.name, m)
		}
		if tc.rcode != 0 && !m.RecursionDesired && tc.name != "update" {
			t.Fatalf("%s: RD not kept", tc.name)
		}
	}
}

func TestUDPListenerFallsBackToMiekgOnUnspecified(t *testing.T) {
	r := newTestResolver(t, Config{Listen: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:0")}})
	r.Apply(bigZone(1))
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if len(r.udp) != 0 || len(r.servers) != 2 {
		t.Fatalf("udp readers %d, miekg servers %d", len(r.udp), len(r.servers))
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), r.Addrs()[0].Port()).String()
	if resp := exchange(t, "udp", addr, "small.corp.example.", mdns.TypeA, 0, false); len(resp.Answer) != 1 {
		t.Fatalf("%v", resp)
	}
}

// A lone query on a live listener is answered at once (a batch read never
// waits for more datagrams), over IPv4 and IPv6, with one reader or two
// (each on its own SO_REUSEPORT socket).
func TestUDPLoneQueries(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:0", "[::1]:0"} {
		for _, readers := range []int{1, 2} {
			r := newTestResolver(t, Config{Listen: []netip.AddrPort{netip.MustParseAddrPort(listen)}})
			r.udpReaders = readers
			r.Apply(bigZone(1))
			if err := r.Start(); err != nil {
				t.Fatal(err)
			}
			if len(r.udp) != 1 {
				t.Fatalf("%s: %d UDP servers", listen, len(r.udp))
			}
			if n := len(r.udp[0].conns); reusePortSupported && n != readers {
				t.Fatalf("%s: %d sockets for %d readers", listen, n, readers)
			}
			addr := r.Addrs()[0].String()
			for i := 0; i < 4*readers; i++ { // a fresh socket each: every reader gets some
				cl := &mdns.Client{Net: "udp", Timeout: 2 * time.Second}
				q := new(mdns.Msg)
				q.SetQuestion("small.corp.example.", mdns.TypeA)
				resp, _, err := cl.Exchange(q, addr)
				if err != nil || len(addrsOf(resp)) != 1 {
					t.Fatalf("%s, %d readers, query %d: %v %v", listen, readers, i, resp, err)
				}
			}
		}
	}
}
