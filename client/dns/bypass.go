package dns

import (
	"context"
	"net/netip"

	mdns "github.com/miekg/dns"
)

// bypass sends the management-domain cache's lookups straight to the
// host's original nameservers over control-plane (marked) sockets, so they
// never follow overlay routes (docs/dns.md, "The control-plane lifeline").
type bypass struct {
	servers []netip.AddrPort
	x       *exchanger
}

// bypassServers keeps the original nameservers a bypass may use: it drops
// invalid, loopback and unspecified addresses and every address we listen
// on (any port), and removes duplicates. Port 0 means 53.
func bypassServers(original, own []netip.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
	for _, ap := range original {
		if !ap.Addr().IsValid() {
			continue
		}
		ap = normAddrPort(ap)
		a := ap.Addr()
		if a.IsLoopback() || a.IsUnspecified() || ownAddr(a, own) || containsAddrPort(out, ap) {
			continue
		}
		out = append(out, ap)
	}
	return out
}

func ownAddr(a netip.Addr, own []netip.AddrPort) bool {
	for _, o := range own {
		if o.Addr().Unmap() == a {
			return true
		}
	}
	return false
}

func containsAddrPort(list []netip.AddrPort, ap netip.AddrPort) bool {
	for _, x := range list {
		if x == ap {
			return true
		}
	}
	return false
}

// newBypass returns the bypass resolver, or nil when no usable original
// nameserver remains. There is never a hard-coded public fallback.
func newBypass(original, own []netip.AddrPort, x *exchanger) *bypass {
	servers := bypassServers(original, own)
	if len(servers) == 0 {
		return nil
	}
	return &bypass{servers: servers, x: x}
}

func (b *bypass) exchange(ctx context.Context, q *mdns.Msg) (*mdns.Msg, netip.AddrPort, error) {
	return b.x.exchange(ctx, b.servers, q)
}

// upstreamServers filters servers for the original handler and the
// nameserver groups: it drops invalid and unspecified addresses and our own
// listening sockets (a loop), keeping loopback resolvers such as
// 127.0.0.53, which are fine for forwarding client queries.
func upstreamServers(servers, own []netip.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
	for _, ap := range servers {
		if !ap.Addr().IsValid() || ap.Addr().IsUnspecified() {
			continue
		}
		ap = normAddrPort(ap)
		if containsAddrPort(own, ap) || containsAddrPort(out, ap) {
			continue
		}
		out = append(out, ap)
	}
	return out
}
