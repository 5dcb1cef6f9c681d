package dns

import (
	"bytes"
	"encoding/binary"
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
// a packable answer within the UDP size limit. It feeds the same bytes to
// the UDP reader's packet path (udp.go) too, twice (the second time a
// pre-encoded answer may be replayed): its answers must be matched to the
// query and within the limit, and those it gives inline must be byte for
// byte what the miekg path (serveWire over UDP) gives.
func FuzzServeDNS(f *testing.F) {
	r := fuzzResolver(f)
	u := memReader(f, r)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkPacketPath(t, r, u, data)
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

func checkPacketPath(t *testing.T, r *Resolver, u *udpReader, data []byte) {
	// Twice: the first answer may teach the reader a pre-encoded answer
	// (answers.go), which the second then replays.
	checkPacket(t, r, u, data)
	checkPacket(t, r, u, data)
}

func checkPacket(t *testing.T, r *Resolver, u *udpReader, data []byte) {
	out, slow := u.handle(data)
	inline := slow == nil
	if slow != nil {
		resp := r.serveMsg(slow, true)
		if resp == nil || resp == needIO {
			t.Fatalf("slow path answer %v", resp)
		}
		var err error
		if out, err = resp.Pack(); err != nil {
			t.Fatalf("slow path answer did not pack: %v", resp)
		}
	}
	if out == nil {
		return
	}
	m := new(mdns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatalf("packet path answer does not unpack: %v", err)
	}
	if len(data) < 12 || m.Id != binary.BigEndian.Uint16(data) || !m.Response {
		t.Fatal("packet path answer not matched to query")
	}
	q := new(mdns.Msg)
	if q.Unpack(data) != nil || acceptQuery(rawHeader(data)) != mdns.MsgAccept {
		return // rejected: FORMERR/NOTIMP (TestUDPRejects)
	}
	limit := mdns.MinMsgSize
	if opt := q.IsEdns0(); opt != nil {
		limit = max(limit, min(int(opt.UDPSize()), serverUDPSize))
	}
	if len(out) > limit {
		t.Fatalf("packet path answer %d bytes > %d", len(out), limit)
	}
	if inline {
		w := &discardWriter{udp: true}
		r.serveWire(w, q)
		if !bytes.Equal(w.wire, out) {
			t.Fatalf("packet path and serveWire differ:\n%v\n%v", m, w.last)
		}
	}
}
