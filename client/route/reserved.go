package route

import (
	"fmt"
	"net/netip"
)

// reservedRanges are ranges a network route must never send into the
// overlay: traffic to them is local to the host or its links, or not
// unicast at all, so routing it to a peer would hijack it. Management
// refuses such routes already (management/validate.go); this is the
// agent's defence in depth against a bad or foreign network map.
var reservedRanges = []struct {
	pfx  netip.Prefix
	what string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "the \"this network\" range"},
	{netip.MustParsePrefix("127.0.0.0/8"), "the loopback range"},
	{netip.MustParsePrefix("169.254.0.0/16"), "the link-local range"},
	{netip.MustParsePrefix("224.0.0.0/4"), "the multicast range"},
	{netip.MustParsePrefix("240.0.0.0/4"), "the reserved range"},
	{netip.MustParsePrefix("::1/128"), "the loopback address"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "the IPv4-mapped IPv6 range"},
	{netip.MustParsePrefix("fe80::/10"), "the link-local range"},
	{netip.MustParsePrefix("ff00::/8"), "the multicast range"},
}

// Reserved returns why the network route p must never be sent into the
// overlay ("" if it may): p overlaps (contains or lies inside) loopback,
// link-local, multicast, 0.0.0.0/8, 240.0.0.0/4 or IPv4-mapped IPv6. An
// exit route (prefix length 0) is never reserved: the host's own local
// routes still win over it.
func Reserved(p netip.Prefix) string {
	if !p.IsValid() {
		return "not a valid prefix"
	}
	if p.Bits() == 0 {
		return ""
	}
	for _, r := range reservedRanges {
		if p.Overlaps(r.pfx) {
			return fmt.Sprintf("%s overlaps %s %s", p.Masked(), r.what, r.pfx)
		}
	}
	return ""
}
