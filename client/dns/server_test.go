package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"go.uber.org/goleak"
)

func bigZone(n int) Settings {
	var recs []Record
	for i := 0; i < n; i++ {
		recs = append(recs, Record{Name: "big.corp.example.", Type: "A", Value: fmt.Sprintf("10.2.%d.%d", i/256, i%256)})
	}
	recs = append(recs, Record{Name: "small.corp.example.", Type: "A", Value: "10.3.0.1"})
	return Settings{Zones: []Zone{{}, {Domain: "corp.example.", Records: recs}}}
}

func startLoopback(t *testing.T, cfg Config) (*Resolver, string) {
	t.Helper()
	cfg.Listen = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}
	r := newTestResolver(t, cfg)
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	return r, r.Addrs()[0].String()
}

func exchange(t *testing.T, network, addr, name string, qtype uint16, edns uint16, do bool) *mdns.Msg {
	t.Helper()
	q := new(mdns.Msg)
	q.SetQuestion(name, qtype)
	if edns > 0 {
		q.SetEdns0(edns, do)
	}
	c := &mdns.Client{Net: network, Timeout: 3 * time.Second, UDPSize: 65535}
	resp, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatalf("%s exchange: %v", network, err)
	}
	return resp
}

func TestServerUDPAndTCP(t *testing.T) {
	r, addr := startLoopback(t, Config{})
	r.Apply(bigZone(1))
	for _, network := range []string{"udp", "tcp"} {
		resp := exchange(t, network, addr, "small.corp.example.", mdns.TypeA, 0, false)
		if len(resp.Answer) != 1 || !resp.Authoritative || !resp.RecursionAvailable || resp.IsEdns0() != nil {
			t.Fatalf("%s: %v", network, resp)
		}
	}
	st := r.Status()
	if st.State != "started" || len(st.Listeners) != 1 || st.Listeners[0] != addr {
		t.Fatalf("status %+v", st)
	}
}

// Truncation: UDP answers larger than 512 (no EDNS0) or the client's EDNS0
// size (capped at serverUDPSize) come back with TC; TCP gets everything.
func TestServerTruncation(t *testing.T) {
	r, addr := startLoopback(t, Config{})
	r.Apply(bigZone(200)) // 200 A records ≈ 3.2 kB
	for _, tc := range []struct {
		name    string
		network string
		edns    uint16
		limit   int
		tc      bool
	}{
		{"udp no edns", "udp", 0, 512, true},
		{"udp edns 1000", "udp", 1000, 1000, true},
		{"udp edns 4096 capped", "udp", 4096, serverUDPSize, true},
		{"udp edns below 512", "udp", 100, 512, true},
		{"tcp", "tcp", 0, 65535, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := exchange(t, tc.network, addr, "big.corp.example.", mdns.TypeA, tc.edns, false)
			resp.Compress = true // as the server sent it
			wire, _ := resp.Pack()
			if resp.Truncated != tc.tc || len(wire) > tc.limit {
				t.Fatalf("TC %v, %d bytes, %d answers (limit %d)", resp.Truncated, len(wire), len(resp.Answer), tc.limit)
			}
			if !tc.tc && len(resp.Answer) != 200 {
				t.Fatalf("%d answers over TCP", len(resp.Answer))
			}
			if tc.tc && len(resp.Answer) == 0 && tc.limit > 600 {
				t.Fatalf("truncated to nothing")
			}
			if (tc.edns > 0) != (resp.IsEdns0() != nil) {
				t.Fatalf("OPT presence wrong: %v", resp.IsEdns0())
			}
		})
	}
}

func TestServerEDNS(t *testing.T) {
	r, addr := startLoopback(t, Config{})
	r.Apply(bigZone(1))
	resp := exchange(t, "udp", addr, "small.corp.example.", mdns.TypeA, 1232, true)
	opt := resp.IsEdns0()
	if opt == nil || opt.UDPSize() != serverUDPSize || !opt.Do() || opt.Version() != 0 {
		t.Fatalf("OPT %v", opt)
	}
	resp = exchange(t, "udp", addr, "small.corp.example.", mdns.TypeA, 1232, false)
	if opt := resp.IsEdns0(); opt == nil || opt.Do() {
		t.Fatalf("DO not echoed as clear: %v", opt)
	}
	// EDNS version 1 → BADVERS.
	q := new(mdns.Msg)
	q.SetQuestion("small.corp.example.", mdns.TypeA)
	q.SetEdns0(1232, false)
	q.IsEdns0().SetVersion(1)
	c := &mdns.Client{Net: "udp", Timeout: 3 * time.Second}
	resp, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Rcode != mdns.RcodeBadVers || len(resp.Answer) != 0 {
		t.Fatalf("rcode %s", mdns.RcodeToString[resp.Rcode])
	}
}

func TestServerRejectsOddQueries(t *testing.T) {
	r, addr := startLoopback(t, Config{})
	r.Apply(bigZone(1))
	c := &mdns.Client{Net: "udp", Timeout: 3 * time.Second}
	for _, tc := range []struct {
		name  string
		build func(q *mdns.Msg)
		rcode int
	}{
		{"class CH", func(q *mdns.Msg) { q.Question[0].Qclass = mdns.ClassCHAOS }, mdns.RcodeRefused},
		{"two questions", func(q *mdns.Msg) { q.Question = append(q.Question, q.Question[0]) }, mdns.RcodeFormatError},
		{"notify", func(q *mdns.Msg) { q.Opcode = mdns.OpcodeNotify }, mdns.RcodeNotImplemented},
		{"update", func(q *mdns.Msg) { q.Opcode = mdns.OpcodeUpdate }, mdns.RcodeNotImplemented},
	} {
		q := new(mdns.Msg)
		q.SetQuestion("small.corp.example.", mdns.TypeA)
		tc.build(q)
		resp, _, err := c.Exchange(q, addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.Rcode != tc.rcode {
			t.Fatalf("%s: rcode %s, want %s", tc.name, mdns.RcodeToString[resp.Rcode], mdns.RcodeToString[tc.rcode])
		}
	}
}

func TestStartErrorNamesAddress(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ap := taken.LocalAddr().(*net.UDPAddr).AddrPort()
	r := newTestResolver(t, Config{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0"), ap}})
	err = r.Start()
	if err == nil || !strings.Contains(err.Error(), ap.String()) {
		t.Fatalf("Start error %v does not name %s", err, ap)
	}
	if len(r.Addrs()) != 0 || r.Status().State != "closed" {
		t.Fatalf("failed Start left listeners: %v", r.Addrs())
	}
	if err := r.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after failed Start: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rig := newCacheRig(t, func(c *Config) { c.Listen = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")} })
	r := rig.r
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	addr := r.Addrs()[0].String()
	// A TCP client connection left open, a lookup blocked in flight.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exchange(t, "udp", addr, "x.example.", mdns.TypeA, 0, false)
	rig.hold()
	r.ApplyServerDomains(mgmtOnly("api.example.net"))
	eventually(t, "lookup in flight", func() bool { return rig.bypassQ.total() > 0 })
	done := make(chan struct{})
	go func() { r.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on an in-flight lookup")
	}
	rig.release()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	if _, _, err := (&mdns.Client{Net: "udp", Timeout: 200 * time.Millisecond}).Exchange(new(mdns.Msg).SetQuestion("x.", mdns.TypeA), addr); err == nil {
		t.Fatal("still answering after Close")
	}
	conn.Close()
	rig.net.wg.Wait()
}

// Apply under concurrent queries: every answer comes from one complete
// state or the other, never from a half-built one.
func TestApplyUnderConcurrentQueries(t *testing.T) {
	r, addr := startLoopback(t, Config{})
	settings := func(v int) Settings {
		recs := []Record{}
		for i := 0; i < 50; i++ {
			recs = append(recs, Record{Name: fmt.Sprintf("h%d", i), Type: "A", Value: fmt.Sprintf("100.64.%d.%d", v, i)})
		}
		return Settings{Domain: "petrel.internal", OverlayPrefix: netip.MustParsePrefix("100.64.0.0/16"),
			Zones: []Zone{{Records: recs}, {Domain: fmt.Sprintf("v%d.example.", v), Records: []Record{{Name: "x", Type: "TXT", Value: "v"}}}}}
	}
	r.Apply(settings(1))
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var bad, n atomic.Int64
	errc := make(chan string, 1)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := &mdns.Client{Net: "udp", Timeout: 2 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				q := new(mdns.Msg)
				q.SetQuestion(fmt.Sprintf("h%d.petrel.internal.", (i+w)%50), mdns.TypeA)
				var resp *mdns.Msg
				var err error
				if w%2 == 0 {
					resp, _ = r.resolveSafe(context.Background(), q)
				} else if resp, _, err = c.Exchange(q, addr); err != nil {
					continue
				}
				n.Add(1)
				a := addrsOf(resp)
				if resp.Rcode != 0 || len(a) != 1 || !(strings.HasPrefix(a[0], "100.64.1.") || strings.HasPrefix(a[0], "100.64.2.")) {
					if bad.Add(1) == 1 {
						errc <- fmt.Sprint(resp)
					}
				}
			}
		}(w)
	}
	for v := 0; ctx.Err() == nil; v++ {
		r.Apply(settings(1 + v%2))
	}
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d/%d bad answers during Apply, first: %s", bad.Load(), n.Load(), <-errc)
	}
	if n.Load() < 100 {
		t.Fatalf("only %d queries ran", n.Load())
	}
}

func TestLookupHostAndQuery(t *testing.T) {
	rig := newCacheRig(t, nil)
	rig.set("api.example.net.", "192.0.2.10", "2001:db8::10")
	s := zoneSettings()
	s.ManagementHost = "api.example.net"
	s.Groups = []NameserverGroup{{ID: "p", Servers: []netip.AddrPort{netip.MustParseAddrPort(primaryNS)}}}
	rig.r.Apply(s)
	rig.cached(t, "api.example.net.")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		want string
		err  error
	}{
		{"api.example.net", "[192.0.2.10 2001:db8::10]", nil},
		{"laptop", "[100.64.0.5]", nil},
		{"laptop.petrel.internal.", "[100.64.0.5]", nil},
		{"10.1.2.3", "[10.1.2.3]", nil},
		{"[2001:db8::5]", "[2001:db8::5]", nil},
		{"nope.petrel.internal", "", ErrNotFound},
		{"bad..name", "", ErrNotFound},
	} {
		addrs, err := rig.r.LookupHost(ctx, tc.name)
		if !errors.Is(err, tc.err) || (err == nil && fmt.Sprint(addrs) != tc.want) {
			t.Fatalf("LookupHost(%s) = %v, %v", tc.name, addrs, err)
		}
	}
	if rig.groupQ.total() != 0 {
		t.Fatal("LookupHost of the management host left the cache")
	}
	a, err := rig.r.Query(ctx, "api.example.net", mdns.TypeA)
	if err != nil || a.Handler != "mgmt-cache" || a.Priority != PrioMgmtCache || !strings.HasPrefix(a.How, "cache fresh (bypass") || len(a.Records) != 1 || a.Rcode != "NOERROR" {
		t.Fatalf("Query: %+v %v", a, err)
	}
	a, _ = rig.r.Query(ctx, "laptop.petrel.internal", mdns.TypeA)
	if a.Handler != "local-zone" || !a.Authoritative {
		t.Fatalf("Query: %+v", a)
	}
	if _, err := rig.r.Query(ctx, "bad..name", mdns.TypeA); err == nil {
		t.Fatal("Query accepted a bad name")
	}
}

type panicHandler struct{}

func (panicHandler) Name() string { return "panic" }
func (panicHandler) ServeDNS(context.Context, *mdns.Msg) (*mdns.Msg, string) {
	panic("handler bug")
}

// A handler that panics costs one SERVFAIL, not the process.
func TestPanicInHandlerIsServfail(t *testing.T) {
	r := newTestResolver(t, Config{})
	st := r.compile(Settings{})
	st.chain = newChain([]link{{prio: PrioPrimary, domain: ".", h: panicHandler{}}})
	r.state.Store(st)
	q := new(mdns.Msg)
	q.SetQuestion("x.example.", mdns.TypeA)
	w := &discardWriter{udp: true}
	r.serveWire(w, q)
	if w.last == nil || w.last.Rcode != mdns.RcodeServerFailure || w.last.Id != q.Id {
		t.Fatalf("answer %v", w.last)
	}
	if a, err := r.Query(context.Background(), "x.example", mdns.TypeA); err != nil || a.Rcode != "SERVFAIL" {
		t.Fatalf("Query: %+v %v", a, err)
	}
}
