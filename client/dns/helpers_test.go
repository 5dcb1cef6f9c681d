package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// upstreamFunc answers a query received over network ("udp"/"tcp"); a nil
// reply means the server stays silent (a timeout for the client).
type upstreamFunc func(network string, q *mdns.Msg) *mdns.Msg

// memNet is an in-memory network of fake DNS servers reached through its
// Dial method (net.Pipe, length-prefixed framing). It records every dial.
type memNet struct {
	mu      sync.Mutex
	servers map[string]upstreamFunc
	dials   []string // "network addr"
	wg      sync.WaitGroup
}

func newMemNet(t *testing.T) *memNet {
	m := &memNet{servers: map[string]upstreamFunc{}}
	t.Cleanup(m.wg.Wait)
	return m
}

func (m *memNet) handle(addr string, f upstreamFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.servers[addr] = f
}

func (m *memNet) dialed() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.dials...)
}

func (m *memNet) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	m.mu.Lock()
	m.dials = append(m.dials, network+" "+addr)
	f := m.servers[addr]
	m.mu.Unlock()
	if f == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
	}
	client, server := net.Pipe()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer server.Close()
		for {
			var l [2]byte
			if _, err := io.ReadFull(server, l[:]); err != nil {
				return
			}
			buf := make([]byte, binary.BigEndian.Uint16(l[:]))
			if _, err := io.ReadFull(server, buf); err != nil {
				return
			}
			q := new(mdns.Msg)
			if q.Unpack(buf) != nil {
				return
			}
			resp := f(network, q)
			if resp == nil {
				continue
			}
			resp.Id = q.Id
			out, err := resp.Pack()
			if err != nil {
				return
			}
			binary.BigEndian.PutUint16(l[:], uint16(len(out)))
			if _, err := server.Write(append(l[:], out...)); err != nil {
				return
			}
		}
	}()
	return client, nil
}

// answerA builds a reply to q with A/AAAA records for the given addresses.
func answerAddrs(q *mdns.Msg, addrs ...string) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetReply(q)
	name := q.Question[0].Name
	for _, a := range addrs {
		ip := netip.MustParseAddr(a)
		switch {
		case ip.Is4() && q.Question[0].Qtype == mdns.TypeA:
			m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 3600}, A: ip.AsSlice()})
		case ip.Is6() && q.Question[0].Qtype == mdns.TypeAAAA:
			m.Answer = append(m.Answer, &mdns.AAAA{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeAAAA, Class: mdns.ClassINET, Ttl: 3600}, AAAA: ip.AsSlice()})
		}
	}
	return m
}

func rcodeReply(q *mdns.Msg, rcode int) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetRcode(q, rcode)
	return m
}

// counter counts queries per "name type".
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(q *mdns.Msg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[q.Question[0].Name+" "+mdns.TypeToString[q.Question[0].Qtype]]++
}

func (c *counter) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.m {
		n += v
	}
	return n
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newTestResolver(t testing.TB, cfg Config) *Resolver {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	// Tests send no DNS traffic off loopback: a test that injects a fake
	// network gets it for the original nameservers too.
	if cfg.Dial == nil {
		cfg.Dial = loopbackOnly
	}
	if cfg.OriginalDial == nil {
		cfg.OriginalDial = cfg.Dial
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.setTryTimeout(300 * time.Millisecond)
	t.Cleanup(func() { r.Close() })
	return r
}

// loopbackOnly dials loopback addresses only.
func loopbackOnly(ctx context.Context, network, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("test dialer: %s is not a loopback address", addr)
	}
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

// ask runs one query through the full chain in-process.
func ask(t testing.TB, r *Resolver, name string, qtype uint16) (*mdns.Msg, answerInfo) {
	t.Helper()
	q := new(mdns.Msg)
	q.SetQuestion(mdns.Fqdn(name), qtype)
	return r.resolveSafe(context.Background(), q)
}

// addrsOf lists the A/AAAA values of an answer.
func addrsOf(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch v := rr.(type) {
		case *mdns.A:
			out = append(out, v.A.String())
		case *mdns.AAAA:
			out = append(out, v.AAAA.String())
		}
	}
	return out
}

// loopbackServer is a real miekg/dns server on 127.0.0.1 (UDP and TCP,
// same port) answering with f.
func loopbackServer(t *testing.T, f upstreamFunc) netip.AddrPort {
	t.Helper()
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String())
		if err != nil {
			pc.Close()
			if attempt < 5 {
				continue
			}
			t.Fatal(err)
		}
		for _, srv := range []*mdns.Server{
			{PacketConn: pc, Handler: serveWith("udp", f)},
			{Listener: ln, Handler: serveWith("tcp", f)},
		} {
			started := make(chan struct{})
			srv.NotifyStartedFunc = func() { close(started) }
			done := make(chan struct{})
			go func() { defer close(done); _ = srv.ActivateAndServe() }()
			<-started
			t.Cleanup(func() { _ = srv.Shutdown(); <-done })
		}
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	}
}

func serveWith(network string, f upstreamFunc) mdns.HandlerFunc {
	return func(w mdns.ResponseWriter, q *mdns.Msg) {
		if resp := f(network, q); resp != nil {
			resp.Id = q.Id
			_ = w.WriteMsg(resp)
		}
	}
}

// memReader is a UDP reader without a socket, for its packet path (handle).
func memReader(t testing.TB, r *Resolver) *udpReader {
	t.Helper()
	u, err := r.newUDPReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
