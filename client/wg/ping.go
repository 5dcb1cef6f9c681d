package wg

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// Ping sends one ICMP echo to dst across the overlay and returns the round
// trip time. In netstack mode it uses the stack's ping socket; in TUN mode an
// unprivileged ICMP socket (raw as a fallback when running as root).
func (d *Device) Ping(ctx context.Context, dst netip.Addr) (time.Duration, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	dst = dst.Unmap()
	var id [2]byte
	_, _ = rand.Read(id[:])
	// A random nonce in the payload: a raw ICMP socket (root without
	// ping_group_range) sees every echo reply on the host, including the
	// replies to concurrent pings of other peers.
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	payload := append([]byte("petrel-ping-"), nonce[:]...)
	echo := &icmp.Echo{ID: int(binary.BigEndian.Uint16(id[:])), Seq: 1, Data: payload}
	var typ icmp.Type = ipv4.ICMPTypeEcho
	proto := 1
	if dst.Is6() {
		typ, proto = ipv6.ICMPTypeEchoRequest, 58
	}
	req, err := (&icmp.Message{Type: typ, Body: echo}).Marshal(nil)
	if err != nil {
		return 0, fmt.Errorf("ping: marshal: %w", err)
	}

	var pc net.PacketConn
	var to net.Addr
	if d.tnet != nil {
		c, err := d.tnet.DialPingAddr(netip.Addr{}, dst)
		if err != nil {
			return 0, fmt.Errorf("ping: %w", err)
		}
		pc, to = c, netstack.PingAddrFromAddr(dst)
	} else {
		pc, to, err = listenICMP(dst)
		if err != nil {
			return 0, err
		}
	}
	defer pc.Close()
	stop := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Now()) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = pc.SetReadDeadline(dl)
	}

	start := time.Now()
	if _, err := pc.WriteTo(req, to); err != nil {
		return 0, fmt.Errorf("ping: write: %w", err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return 0, fmt.Errorf("ping: %w", ctx.Err())
			}
			return 0, fmt.Errorf("ping: read: %w", err)
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			continue
		}
		if m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply {
			continue
		}
		if !replyFrom(from, dst) {
			continue
		}
		if e, ok := m.Body.(*icmp.Echo); ok && e.Seq == echo.Seq && string(e.Data) == string(echo.Data) {
			// The ID may be rewritten by unprivileged sockets; the nonce,
			// the sequence and the source match.
			return time.Since(start), nil
		}
	}
}

// listenICMP opens an ICMP socket for TUN mode: the unprivileged datagram
// kind first (net.ipv4.ping_group_range), raw when that is not permitted.
func listenICMP(dst netip.Addr) (net.PacketConn, net.Addr, error) {
	nw, raw, laddr := "udp4", "ip4:icmp", "0.0.0.0"
	if dst.Is6() {
		nw, raw, laddr = "udp6", "ip6:ipv6-icmp", "::"
	}
	c, err := icmp.ListenPacket(nw, laddr)
	if err == nil {
		return c, &net.UDPAddr{IP: dst.AsSlice()}, nil
	}
	c, err2 := icmp.ListenPacket(raw, laddr)
	if err2 != nil {
		return nil, nil, fmt.Errorf("ping: open icmp socket: %w", errors.Join(err, err2, os.ErrPermission))
	}
	return c, &net.IPAddr{IP: dst.AsSlice()}, nil
}

// replyFrom reports whether a reply's source address is dst (an unknown
// address form is accepted: the nonce still has to match).
func replyFrom(from net.Addr, dst netip.Addr) bool {
	var ip net.IP
	switch a := from.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	default:
		return true
	}
	got, ok := netip.AddrFromSlice(ip)
	return !ok || got.Unmap() == dst
}
