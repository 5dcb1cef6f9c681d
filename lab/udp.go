package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// ReflectUDP answers every datagram on pc with the sender's address as
// text ("ip:port"), like a minimal STUN server, until ctx ends or pc is
// closed. `lab udp-reflect` runs it in a namespace.
func ReflectUDP(ctx context.Context, pc net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 2048)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reflect udp: %w", err)
		}
		if _, err := pc.WriteTo([]byte(from.String()), from); err != nil {
			return fmt.Errorf("reflect udp: %w", err)
		}
	}
}

// ProbeUDP sends probes from c to a reflector at to until one is answered
// and returns the address the reflector saw (the public mapping). It
// retries every 200 ms until ctx ends.
func ProbeUDP(ctx context.Context, c *net.UDPConn, to netip.AddrPort) (netip.AddrPort, error) {
	buf := make([]byte, 256)
	for {
		if _, err := c.WriteToUDPAddrPort([]byte("probe"), to); err != nil {
			return netip.AddrPort{}, fmt.Errorf("probe %s: %w", to, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			if from.Addr().Unmap() != to.Addr() || from.Port() != to.Port() {
				continue // stray datagram from elsewhere
			}
			_ = c.SetReadDeadline(time.Time{})
			ap, err := netip.ParseAddrPort(string(buf[:n]))
			if err != nil {
				return netip.AddrPort{}, fmt.Errorf("probe %s: bad answer %q", to, buf[:n])
			}
			return ap, nil
		}
		if err := ctx.Err(); err != nil {
			_ = c.SetReadDeadline(time.Time{})
			return netip.AddrPort{}, fmt.Errorf("probe %s: %w", to, err)
		}
	}
}
