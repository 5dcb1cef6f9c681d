package dns

import (
	"net"
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"
)

// discardWriter is an in-process mdns.ResponseWriter that packs what it is
// given, as the real one does, and keeps the last message.
type discardWriter struct {
	udp  bool
	last *mdns.Msg
	wire []byte
}

func (w *discardWriter) LocalAddr() net.Addr {
	if w.udp {
		return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (w *discardWriter) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}
}
func (w *discardWriter) WriteMsg(m *mdns.Msg) error {
	w.last = m
	var err error
	w.wire, err = m.PackBuffer(w.wire[:0])
	return err
}
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) Close() error                { return nil }
func (w *discardWriter) TsigStatus() error           { return nil }
func (w *discardWriter) TsigTimersOnly(bool)         {}
func (w *discardWriter) Hijack()                     {}

// fuzzResolver has every handler kind wired to in-memory upstreams.
func fuzzResolver(t testing.TB) *Resolver {
	clk := newFakeClock()
	mn := &memNet{servers: map[string]upstreamFunc{}}
	if tt, ok := t.(*testing.T); ok {
		tt.Cleanup(mn.wg.Wait)
	}
	if fb, ok := t.(*testing.F); ok {
		fb.Cleanup(mn.wg.Wait)
	}
	mn.handle(bypassNS, func(_ string, q *mdns.Msg) *mdns.Msg {
		m := answerAddrs(q, "192.0.2.1", "2001:db8::1")
		if len(q.Question[0].Name)%3 == 0 {
			m.Truncated = true
		}
		return m
	})
	r := newTestResolver(t, Config{
		Original: []netip.AddrPort{netip.MustParseAddrPort(bypassNS)},
		Dial:     mn.Dial,
		Clock:    clk.Now,
	})
	s := zoneSettings()
	s.Groups = []NameserverGroup{{ID: "dead", Servers: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.99:53")}, Domains: []string{"example.com"}}}
	s.ManagementHost = "api.example.net"
	s.ServerDomains = ServerDomains{Has: AllCategories, RelayPoolRoots: []string{"relay.example.net"}}
	r.Apply(s)
	return r
}

// FuzzServeDNS feeds arbitrary bytes into the query path as the listener
// would (unpack, then serve) and checks it never panics and always produces
// a packable answer within the UDP size limit.
func FuzzServeDNS(f *testing.F) {
	r := fuzzResolver(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		q := new(mdns.Msg)
		if err := q.Unpack(data); err != nil {
			return
		}
		udp := len(data)%2 == 0
		w := &discardWriter{udp: udp}
		r.serveWire(w, q)
		if w.last == nil {
			return
		}
		if w.wire == nil {
			t.Fatalf("answer did not pack: %v", w.last)
		}
		limit := mdns.MinMsgSize
		if opt := q.IsEdns0(); opt != nil {
			limit = max(limit, min(int(opt.UDPSize()), serverUDPSize))
		}
		if udp && len(w.wire) > limit {
			t.Fatalf("UDP answer %d bytes > %d", len(w.wire), limit)
		}
		if w.last.Id != q.Id || !w.last.Response {
			t.Fatal("answer not matched to query")
		}
	})
}
