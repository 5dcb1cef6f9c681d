//go:build lab

package lab_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"petrel/lab"
)

// reflectors starts three UDP reflectors: two ports on the server (in this
// process, sockets opened in its namespace) and one on a second bridge host
// run as the `lab udp-reflect` subprocess.
func reflectors(t *testing.T, l *lab.Lab) []netip.AddrPort {
	t.Helper()
	srv, err := l.AddServerHost("refl1", lab.ServerAddr)
	if err != nil {
		t.Fatal(err)
	}
	other, err := l.AddServerHost("refl2", netip.MustParseAddr("203.0.113.11"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var out []netip.AddrPort
	for _, port := range []uint16{3478, 3479} {
		ap := netip.AddrPortFrom(srv.Addr, port)
		pc, err := srv.ListenUDP(ap.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go lab.ReflectUDP(ctx, pc)
		out = append(out, ap)
	}
	ap := netip.AddrPortFrom(other.Addr, 3478)
	p, err := other.Start(ctx, needBin(t), "udp-reflect", "--listen", ap.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	return append(out, ap)
}

// mappings returns the public address each reflector sees for one socket.
func mappings(t *testing.T, h *lab.Host, refl []netip.AddrPort) (*net.UDPConn, []netip.AddrPort) {
	t.Helper()
	c, err := h.ListenUDP("0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var m []netip.AddrPort
	for _, r := range refl {
		ap, err := lab.ProbeUDP(ctx, c, r)
		if err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if ap.Addr() != h.PublicAddr {
			t.Fatalf("%s: reflector saw %s, want the NAT's public address %s", h.Name, ap, h.PublicAddr)
		}
		m = append(m, ap)
	}
	return c, m
}

func TestNATMappingBehaviour(t *testing.T) {
	l := lab.NewT(t, lab.Options{})
	refl := reflectors(t, l)
	for _, tc := range []struct {
		name string
		kind lab.NATKind
	}{{"eim1", lab.EIM}, {"eim2", lab.EIM}, {"sym1", lab.Symmetric}, {"sym2", lab.Symmetric}} {
		h, err := l.AddNATHost(tc.name, tc.kind)
		if err != nil {
			t.Fatal(err)
		}
		c, m := mappings(t, h, refl)
		local := netip.MustParseAddrPort(c.LocalAddr().String())
		t.Logf("%s (%s) local port %d: mappings %v", h.Name, tc.kind, local.Port(), m)
		switch tc.kind {
		case lab.EIM:
			for _, ap := range m {
				if ap != m[0] {
					t.Errorf("%s: EIM NAT gave different mappings %v for one socket", h.Name, m)
				}
			}
			if m[0].Port() != local.Port() {
				t.Errorf("%s: EIM NAT did not preserve port %d: %v", h.Name, local.Port(), m)
			}
		case lab.Symmetric:
			// Three destinations, three random ports: a chance collision of
			// two draws from ~64k ports is a ~5e-5 event per run.
			if m[0].Port() == m[1].Port() || m[0].Port() == m[2].Port() || m[1].Port() == m[2].Port() {
				t.Errorf("%s: symmetric NAT reused a port across destinations: %v", h.Name, m)
			}
		}
		if err := h.FlushConntrack(); err != nil {
			t.Fatal(err)
		}
	}
}

// punch runs a simultaneous UDP hole punch between a and b for up to d and
// reports whether each side received the other's datagrams.
func punch(t *testing.T, a, b *lab.Host, refl netip.AddrPort, d time.Duration) (aGot, bGot bool) {
	t.Helper()
	ca, ma := mappings(t, a, []netip.AddrPort{refl})
	cb, mb := mappings(t, b, []netip.AddrPort{refl})
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	type res struct {
		who string
		got bool
	}
	results := make(chan res, 2)
	side := func(who string, c *net.UDPConn, peer netip.AddrPort) {
		got := false
		buf := make([]byte, 64)
		for ctx.Err() == nil {
			_, _ = c.WriteToUDPAddrPort([]byte("punch "+who), peer)
			_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err == nil && strings.HasPrefix(string(buf[:n]), "punch") && from.Addr() == peer.Addr() {
				got = true
				// Keep sending for a while so the other side hears us too.
				for range 10 {
					_, _ = c.WriteToUDPAddrPort([]byte("punch "+who), peer)
					time.Sleep(50 * time.Millisecond)
				}
				break
			}
		}
		results <- res{who, got}
	}
	go side("a", ca, mb[0])
	go side("b", cb, ma[0])
	for range 2 {
		r := <-results
		if r.who == "a" {
			aGot = r.got
		} else {
			bGot = r.got
		}
	}
	return aGot, bGot
}

func TestHolePunch(t *testing.T) {
	l := lab.NewT(t, lab.Options{})
	refl := reflectors(t, l)[0]
	e1, err := l.AddNATHost("e1", lab.EIM)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := l.AddNATHost("e2", lab.EIM)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := l.AddNATHost("s1", lab.Symmetric)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := punch(t, e1, e2, refl, 30*time.Second); !a || !b {
		t.Fatalf("EIM<->EIM hole punch failed: e1 heard e2 %v, e2 heard e1 %v", a, b)
	}
	// The failure case cannot succeed later, so a short window is enough.
	if a, b := punch(t, e1, s1, refl, 3*time.Second); a || b {
		t.Fatalf("EIM<->symmetric hole punch got through (e1 heard s1 %v, s1 heard e1 %v): symmetric NAT is not symmetric", a, b)
	}
}
