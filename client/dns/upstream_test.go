package dns

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// fixed answers every A query with addr and counts queries per network.
func fixed(addr string, udp, tcp *counter) upstreamFunc {
	return func(network string, q *mdns.Msg) *mdns.Msg {
		if network == "udp" {
			udp.add(q)
		} else {
			tcp.add(q)
		}
		return answerAddrs(q, addr)
	}
}

func silent(c *counter) upstreamFunc {
	return func(_ string, q *mdns.Msg) *mdns.Msg { c.add(q); return nil }
}

func group(id string, primary bool, domains []string, servers ...netip.AddrPort) NameserverGroup {
	return NameserverGroup{ID: id, Servers: servers, Domains: domains, Primary: primary}
}

func TestGroupServersInOrder(t *testing.T) {
	var c1, c2, x counter
	s1 := loopbackServer(t, fixed("10.0.0.1", &c1, &x))
	s2 := loopbackServer(t, fixed("10.0.0.2", &c2, &x))
	r := newTestResolver(t, Config{})
	r.Apply(Settings{Groups: []NameserverGroup{group("g", true, nil, s1, s2)}})
	for i := 0; i < 3; i++ {
		resp, info := ask(t, r, "host.example.com", mdns.TypeA)
		if !slices.Equal(addrsOf(resp), []string{"10.0.0.1"}) || info.How != "upstream "+s1.String() {
			t.Fatalf("got %v %+v", addrsOf(resp), info)
		}
	}
	if c2.total() != 0 {
		t.Fatal("second server asked while the first answers")
	}
}

func TestGroupTimeoutNextServerAndHealthSkip(t *testing.T) {
	clk := newFakeClock()
	var dead, c2, x counter
	s1 := loopbackServer(t, silent(&dead))
	s2 := loopbackServer(t, fixed("10.0.0.2", &c2, &x))
	r := newTestResolver(t, Config{Clock: clk.Now})
	r.Apply(Settings{Groups: []NameserverGroup{group("g", true, nil, s1, s2)}})

	start := time.Now()
	resp, info := ask(t, r, "host.example.com", mdns.TypeA)
	if !slices.Equal(addrsOf(resp), []string{"10.0.0.2"}) || info.How != "upstream "+s2.String() {
		t.Fatalf("got %v %+v", addrsOf(resp), info)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("answered in %v: the timeout was not waited for", d)
	}
	if dead.total() != 1 {
		t.Fatalf("dead server saw %d queries", dead.total())
	}
	// Within 30 s the dead server is skipped: fast, and it sees nothing.
	start = time.Now()
	for i := 0; i < 3; i++ {
		ask(t, r, "host.example.com", mdns.TypeA)
	}
	if d := time.Since(start); d > 200*time.Millisecond || dead.total() != 1 {
		t.Fatalf("dead server not skipped: %v, %d queries", d, dead.total())
	}
	st := r.Status()
	if i := slices.IndexFunc(st.Upstreams, func(u UpstreamStatus) bool { return u.Server == s1.String() }); i < 0 || st.Upstreams[i].Healthy || st.Upstreams[i].LastError == "" {
		t.Fatalf("status: %+v", st.Upstreams)
	}
	// After 30 s it is tried again.
	clk.Advance(31 * time.Second)
	ask(t, r, "host.example.com", mdns.TypeA)
	if dead.total() != 2 {
		t.Fatalf("dead server not retried after the hold: %d", dead.total())
	}
}

func TestGroupAllDownStillTried(t *testing.T) {
	var c1, x counter
	var down atomic.Bool
	s1 := loopbackServer(t, func(n string, q *mdns.Msg) *mdns.Msg {
		if down.Load() {
			return nil
		}
		return fixed("10.0.0.1", &c1, &x)(n, q)
	})
	r := newTestResolver(t, Config{})
	r.Apply(Settings{Groups: []NameserverGroup{group("g", true, nil, s1)}})
	down.Store(true)
	if resp, _ := ask(t, r, "a.example.com", mdns.TypeA); resp.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("rcode %d", resp.Rcode)
	}
	down.Store(false) // recovered within the hold; the only server is still asked
	if resp, _ := ask(t, r, "a.example.com", mdns.TypeA); !slices.Equal(addrsOf(resp), []string{"10.0.0.1"}) {
		t.Fatalf("got %v", addrsOf(resp))
	}
}

func TestGroupServfailTriesNext(t *testing.T) {
	var c2, x counter
	s1 := loopbackServer(t, func(_ string, q *mdns.Msg) *mdns.Msg { return rcodeReply(q, mdns.RcodeServerFailure) })
	s2 := loopbackServer(t, fixed("10.0.0.2", &c2, &x))
	r := newTestResolver(t, Config{})
	r.Apply(Settings{Groups: []NameserverGroup{group("g", true, nil, s1, s2)}})
	if resp, _ := ask(t, r, "a.example.com", mdns.TypeA); !slices.Equal(addrsOf(resp), []string{"10.0.0.2"}) {
		t.Fatalf("got %v", addrsOf(resp))
	}
}

func TestTruncatedUDPRetriedOverTCP(t *testing.T) {
	var udp, tcp counter
	s := loopbackServer(t, func(network string, q *mdns.Msg) *mdns.Msg {
		if network == "udp" {
			udp.add(q)
			m := answerAddrs(q)
			m.Truncated = true
			return m
		}
		tcp.add(q)
		addrs := make([]string, 100)
		for i := range addrs {
			addrs[i] = netip.AddrFrom4([4]byte{10, 1, byte(i / 256), byte(i)}).String()
		}
		return answerAddrs(q, addrs...)
	})
	r := newTestResolver(t, Config{})
	r.Apply(Settings{Groups: []NameserverGroup{group("g", true, nil, s)}})
	resp, _ := ask(t, r, "big.example.com", mdns.TypeA)
	if len(resp.Answer) != 100 || resp.Truncated {
		t.Fatalf("answers %d, TC %v", len(resp.Answer), resp.Truncated)
	}
	if udp.total() != 1 || tcp.total() != 1 {
		t.Fatalf("udp %d tcp %d", udp.total(), tcp.total())
	}
}

// Match-domain groups: the most specific domain first; a failing group
// passes to the next matching handler; unmatched names go to the primary,
// then the original nameservers; nothing at all is SERVFAIL.
func TestMatchDomainSpecificity(t *testing.T) {
	var x counter
	sA := loopbackServer(t, fixed("10.0.0.1", &x, &x))
	sB := loopbackServer(t, fixed("10.0.0.2", &x, &x))
	sP := loopbackServer(t, fixed("10.0.0.3", &x, &x))
	sO := loopbackServer(t, fixed("10.0.0.4", &x, &x))
	var deadQ counter
	dead := loopbackServer(t, silent(&deadQ))
	r := newTestResolver(t, Config{Original: []netip.AddrPort{sO}})
	r.Apply(Settings{Groups: []NameserverGroup{
		group("A", false, []string{"example.com"}, sA),
		group("B", false, []string{"corp.example.com."}, sB),
		group("dead", false, []string{"dead.example.com"}, dead),
		group("P", false, []string{"."}, sP),
	}})
	for _, tc := range []struct{ name, addr, handler string }{
		{"x.corp.example.com", "10.0.0.2", "group:B"},
		{"corp.example.com", "10.0.0.2", "group:B"},
		{"y.example.com", "10.0.0.1", "group:A"},
		{"notcorp.example.com", "10.0.0.1", "group:A"},
		{"z.dead.example.com", "10.0.0.1", "group:A"}, // dead group passes to the less specific one
		{"other.org", "10.0.0.3", "group:P"},
	} {
		resp, info := ask(t, r, tc.name, mdns.TypeA)
		if !slices.Equal(addrsOf(resp), []string{tc.addr}) || info.Handler != tc.handler {
			t.Fatalf("%s: got %v %+v, want %s from %s", tc.name, addrsOf(resp), info, tc.addr, tc.handler)
		}
	}
	hs := r.Status().Handlers
	var order []string
	for _, h := range hs {
		order = append(order, h.Name+"@"+h.Domain)
	}
	if got := strings.Join(order, " "); got != "mgmt-cache@. group:B@corp.example.com. group:dead@dead.example.com. group:A@example.com. group:P@. original@." {
		t.Fatalf("chain order: %s", got)
	}

	// The primary group fails: the original nameservers answer.
	r.Apply(Settings{Groups: []NameserverGroup{group("P", true, nil, dead)}})
	if resp, info := ask(t, r, "other.org", mdns.TypeA); !slices.Equal(addrsOf(resp), []string{"10.0.0.4"}) || info.Handler != "original" {
		t.Fatalf("got %v %+v", addrsOf(resp), info)
	}
}

func TestNoHandlerIsServfail(t *testing.T) {
	r := newTestResolver(t, Config{})
	resp, info := ask(t, r, "anything.example", mdns.TypeA)
	if resp.Rcode != mdns.RcodeServerFailure || info.Handler != "none" {
		t.Fatalf("rcode %d %+v", resp.Rcode, info)
	}
}

// Our own listener is never used as an upstream (a loop).
func TestOwnAddressNotUpstream(t *testing.T) {
	r := newTestResolver(t, Config{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}})
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	own := r.Addrs()[0]
	r.Apply(Settings{Groups: []NameserverGroup{group("self", true, nil, own)}})
	if len(r.state.Load().groups) != 0 {
		t.Fatal("group pointing at ourselves kept")
	}
}

// The original-nameserver handler uses OriginalDial (ordinary host
// sockets that follow an exit node), never the control-plane Dial: with an
// exit node, other programs' queries must not go around it.
func TestOriginalUsesOriginalDial(t *testing.T) {
	mn := newMemNet(t)
	mn.handle(extNS, func(_ string, q *mdns.Msg) *mdns.Msg { return answerAddrs(q, "203.0.113.7") })
	var marked int
	r := newTestResolver(t, Config{
		Original: []netip.AddrPort{netip.MustParseAddrPort(extNS)},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			marked++
			return mn.Dial(ctx, network, addr)
		},
		OriginalDial: mn.Dial,
		NoBypass:     true,
	})
	resp, info := ask(t, r, "www.example.org", mdns.TypeA)
	if resp == nil || len(resp.Answer) != 1 || info.Handler != "original" {
		t.Fatalf("answer %v via %+v", resp, info)
	}
	if marked != 0 {
		t.Fatalf("the original nameservers were asked over control-plane sockets %d times", marked)
	}
}
