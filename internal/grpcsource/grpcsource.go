// Package grpcsource tells a gRPC handler which IP address the call came
// from, for per-source limits.
//
// Any package may import it. Functions are pure.
package grpcsource

import (
	"context"
	"net"
	"net/netip"

	"google.golang.org/grpc/peer"
)

// Addr returns the remote IP of the call in ctx (IPv4-mapped addresses
// unmapped), or the zero Addr when the transport has none (in-process
// callers, in-memory listeners).
func Addr(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}
	}
	if ta, ok := p.Addr.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
