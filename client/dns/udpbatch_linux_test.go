package dns

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// One batch: every query in it is answered to its own sender with one
// flush, a reply that cannot be sent costs only itself, and what gets no
// reply alone (a runt) gets none in a batch either.
func TestUDPBatch(t *testing.T) {
	r := newTestResolver(t, Config{})
	s := zoneSettings()
	s.Groups = nil
	r.Apply(s)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	u, err := r.newUDPReader(conn)
	if err != nil {
		t.Fatal(err)
	}
	var clients [3]*net.UDPConn
	for i := range clients {
		if clients[i], err = net.DialUDP("udp", nil, conn.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		defer clients[i].Close()
	}
	query := func(id uint16, name string) []byte {
		return packQuery(t, name, mdns.TypeA, qopts{id: id})
	}
	batch := []struct {
		pkt []byte
		c   int
	}{
		{query(1, "laptop.petrel.internal."), 0},
		{query(2, "laptop.petrel.internal."), 1}, // its reply will not be sendable
		{query(3, "nope.petrel.internal."), 1},
		{[]byte{0, 4, 1}, 0},                     // a runt: no reply
		{query(5, "LAPTOP.petrel.internal."), 2}, // replayed
		{query(6, "Laptop.petrel.internal."), 0}, // replayed
	}
	for _, b := range batch {
		if _, err := clients[b.c].Write(b.pkt); err != nil {
			t.Fatal(err)
		}
	}
	// Loopback queues each datagram before Write returns.
	n, err := u.bc.read()
	if err != nil || n != len(batch) {
		t.Fatalf("read %d datagrams (%v), want %d", n, err, len(batch))
	}
	for i, b := range batch {
		if got, want := u.bc.sender(i), clients[b.c].LocalAddr().(*net.UDPAddr).AddrPort(); got != want {
			t.Fatalf("datagram %d from %v, want %v", i, got, want)
		}
	}
	// An IPv6 sockaddr cannot be sent to from an IPv4 socket.
	binary.NativeEndian.PutUint16(u.bc.names[1][:], unix.AF_INET6)
	u.bc.rhs[1].Hdr.Namelen = unix.SizeofSockaddrInet6
	u.serveBatch(n)
	if u.replays != 3 {
		t.Fatalf("%d replays in the batch, want 3", u.replays)
	}
	want := [][]string{
		{"1 laptop.petrel.internal. [100.64.0.5]", "6 Laptop.petrel.internal. [100.64.0.5]"},
		{"3 nope.petrel.internal. NXDOMAIN"},
		{"5 LAPTOP.petrel.internal. [100.64.0.5]"},
	}
	buf := make([]byte, 1500)
	for c, answers := range want {
		for _, w := range answers {
			_ = clients[c].SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := clients[c].Read(buf)
			if err != nil {
				t.Fatalf("client %d waiting for %q: %v", c, w, err)
			}
			m := new(mdns.Msg)
			if err := m.Unpack(buf[:n]); err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("%d %s %v", m.Id, m.Question[0].Name, addrsOf(m))
			if m.Rcode != mdns.RcodeSuccess {
				got = fmt.Sprintf("%d %s %s", m.Id, m.Question[0].Name, mdns.RcodeToString[m.Rcode])
			}
			if got != w {
				t.Fatalf("client %d got %q, want %q", c, got, w)
			}
		}
	}
	for c := range clients {
		_ = clients[c].SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := clients[c].Read(buf); err == nil {
			t.Fatalf("client %d: unexpected datagram (%d bytes)", c, n)
		}
	}
}

// The sender of a datagram as the kernel reports it: IPv4, IPv6, and IPv6
// with a scope (the zone is the interface index).
func TestBatchSender(t *testing.T) {
	b := &batchConn{names: make([][unix.SizeofSockaddrInet6]byte, 3)}
	v4 := b.names[0][:]
	binary.NativeEndian.PutUint16(v4, unix.AF_INET)
	binary.BigEndian.PutUint16(v4[2:], 5353)
	copy(v4[4:], []byte{192, 0, 2, 7})
	v6 := b.names[1][:]
	binary.NativeEndian.PutUint16(v6, unix.AF_INET6)
	binary.BigEndian.PutUint16(v6[2:], 53)
	copy(v6[8:], netip.MustParseAddr("2001:db8::9").AsSlice())
	ll := b.names[2][:]
	copy(ll, v6)
	copy(ll[8:], netip.MustParseAddr("fe80::1").AsSlice())
	binary.NativeEndian.PutUint32(ll[24:], 3)
	for i, want := range []string{"192.0.2.7:5353", "[2001:db8::9]:53", "[fe80::1%3]:53"} {
		if got := b.sender(i).String(); got != want {
			t.Errorf("sender %d: %s, want %s", i, got, want)
		}
	}
}
