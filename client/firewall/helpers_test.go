package firewall

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for WithClock.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// ipPkt wraps l4 in an IPv4 or IPv6 header (by src's family).
func ipPkt(src, dst string, proto uint8, l4 []byte) []byte {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	if s.Is4() {
		b := make([]byte, 20+len(l4))
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		b[8] = 64
		b[9] = proto
		copy(b[12:16], s.AsSlice())
		copy(b[16:20], d.AsSlice())
		copy(b[20:], l4)
		return b
	}
	b := make([]byte, 40+len(l4))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(l4)))
	b[6] = proto
	b[7] = 64
	copy(b[8:24], s.AsSlice())
	copy(b[24:40], d.AsSlice())
	copy(b[40:], l4)
	return b
}

func tcpSeg(sport, dport uint16, flags uint8) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	b[12] = 5 << 4
	b[13] = flags
	return b
}

func udpDgram(sport, dport uint16) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], 12)
	return b
}

func icmpMsg(typ, code uint8, id uint16, body []byte) []byte {
	b := make([]byte, 8+len(body))
	b[0], b[1] = typ, code
	binary.BigEndian.PutUint16(b[4:], id)
	copy(b[8:], body)
	return b
}

func tcp(src, dst string, sport, dport uint16, flags uint8) []byte {
	return ipPkt(src, dst, ipTCP, tcpSeg(sport, dport, flags))
}

func udp(src, dst string, sport, dport uint16) []byte {
	return ipPkt(src, dst, ipUDP, udpDgram(sport, dport))
}

// ping builds an echo request (reply=false) or reply, ICMPv4 or v6.
func ping(src, dst string, id uint16, reply bool) []byte {
	if netip.MustParseAddr(src).Is4() {
		typ := uint8(8)
		if reply {
			typ = 0
		}
		return ipPkt(src, dst, ipICMP, icmpMsg(typ, 0, id, nil))
	}
	typ := uint8(128)
	if reply {
		typ = 129
	}
	return ipPkt(src, dst, ipICMPv6, icmpMsg(typ, 0, id, nil))
}

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p)
		} else {
			out = append(out, netip.PrefixFrom(netip.MustParseAddr(s), netip.MustParseAddr(s).BitLen()))
		}
	}
	return out
}

const (
	self  = "100.64.0.1"
	peerA = "100.64.0.2"
	peerB = "100.64.0.3"
	self6 = "fd00::1"
	peer6 = "fd00::2"
)

// newTest returns a filter with cfg applied, no GC goroutine, and a fake
// clock; it is closed at the end of the test.
func newTest(t testing.TB, cfg Config, opts ...Option) (*Filter, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	f := New(nil, append([]Option{WithClock(clk.Now), WithGCInterval(0)}, opts...)...)
	t.Cleanup(f.Close)
	if cfg.Self == nil {
		cfg.Self = pfx(self, self6)
	}
	f.Apply(cfg)
	return f, clk
}

func mustPass(t *testing.T, ok bool, what string) {
	t.Helper()
	if !ok {
		t.Fatalf("%s: dropped, want pass", what)
	}
}

func mustDrop(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		t.Fatalf("%s: passed, want drop", what)
	}
}
