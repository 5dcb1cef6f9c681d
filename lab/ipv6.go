package lab

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// IPv6 is opt-in per host (Host.EnableIPv6): the lab's addressing stays
// IPv4, and a test that needs an IPv6 internet (an exit node must not let
// IPv6 bypass it) turns it on for the hosts involved. Addresses come from
// the documentation range 2001:db8::/32 and mirror the IPv4 plan:
//
//	internet bridge  2001:db8:ff::/64, gateway 2001:db8:ff::1 (inet namespace;
//	                 unlike IPv4 it forwards IPv6, to reach the NAT LANs)
//	bridge host      203.0.113.D -> 2001:db8:ff::D (D's decimal digits as hex)
//	NAT host N       LAN 2001:db8:N::/64, host ::2, router ::1; router WAN
//	                 2001:db8:ff::(100+N); no NAT66: the LAN is routed
//	                 (inet has a route to it via the router's WAN address)
//
// The NAT router's filter (inet family) applies to IPv6 too: forward only
// LAN→WAN and established; its input additionally accepts ICMPv6 on the
// WAN (neighbour discovery). Addresses are added without DAD (nodad), so
// they are usable at once.
var (
	// InternetPrefix6 is the IPv6 subnet of the internet bridge.
	InternetPrefix6 = netip.MustParsePrefix("2001:db8:ff::/64")
	// InternetGateway6 is the bridge's own IPv6 address.
	InternetGateway6 = netip.MustParseAddr("2001:db8:ff::1")
)

// v6Mirror maps a decimal number (an IPv4 octet) to the IPv6 group with the
// same digits: 80 -> 0x80, so 203.0.113.80 reads as 2001:db8:ff::80.
func v6Mirror(n int) uint16 {
	v, _ := strconv.ParseUint(strconv.Itoa(n), 16, 16)
	return uint16(v)
}

func addr6(prefix netip.Prefix, group3 uint16, host uint16) netip.Addr {
	b := prefix.Addr().As16()
	if group3 != 0 {
		b[4], b[5] = byte(group3>>8), byte(group3)
	}
	b[14], b[15] = byte(host>>8), byte(host)
	return netip.AddrFrom16(b)
}

// EnableIPv6 gives a bridge host or a NAT host (and its router) IPv6
// addresses and routes as described above and returns the host's own IPv6
// address. It is idempotent. A NAT host's router WAN address follows the
// public IPv4 address at the time of the call (ChangePublicAddr does not
// move it).
func (h *Host) EnableIPv6() (netip.Addr, error) {
	l := h.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.inet == nil {
		return netip.Addr{}, fmt.Errorf("enable IPv6 on %s: no internet", h.Name)
	}
	ctx, cancel := opCtx()
	defer cancel()
	pfx6 := func(a netip.Addr) string { return netip.PrefixFrom(a, 64).String() }
	inet := l.inet.NS
	steps := [][]string{
		{"ip", "-n", inet, "-6", "addr", "replace", pfx6(InternetGateway6), "dev", l.devName("br"), "nodad"},
		{"ip", "netns", "exec", inet, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"},
	}
	var own netip.Addr
	nss := []string{inet, h.NS}
	switch {
	case h.RouterNS == "" && h.bridgePort != "":
		own = addr6(InternetPrefix6, 0, v6Mirror(int(h.Addr.As4()[3])))
		steps = append(steps,
			[]string{"ip", "-n", h.NS, "-6", "addr", "replace", pfx6(own), "dev", h.Dev, "nodad"},
			[]string{"ip", "-n", h.NS, "-6", "route", "replace", "default", "via", InternetGateway6.String()})
	case h.RouterNS != "":
		n := int(h.Addr.As4()[2])
		lan := netip.PrefixFrom(addr6(netip.MustParsePrefix("2001:db8::/64"), v6Mirror(n), 0), 64)
		own = addr6(lan, 0, 2)
		gw := addr6(lan, 0, 1)
		wan6 := addr6(InternetPrefix6, 0, v6Mirror(int(h.PublicAddr.As4()[3])))
		wan := l.devName("wan")
		r := h.RouterNS
		nss = append(nss, r)
		steps = append(steps,
			[]string{"ip", "-n", r, "-6", "addr", "replace", pfx6(wan6), "dev", wan, "nodad"},
			[]string{"ip", "-n", r, "-6", "addr", "replace", pfx6(gw), "dev", l.devName("lan"), "nodad"},
			[]string{"ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"},
			[]string{"ip", "-n", r, "-6", "route", "replace", "default", "via", InternetGateway6.String()},
			[]string{"ip", "-n", h.NS, "-6", "addr", "replace", pfx6(own), "dev", h.Dev, "nodad"},
			[]string{"ip", "-n", h.NS, "-6", "route", "replace", "default", "via", gw.String()},
			[]string{"ip", "-n", inet, "-6", "route", "replace", lan.String(), "via", wan6.String()})
		// Neighbour discovery on the WAN; the input chain drops other
		// unsolicited WAN traffic. Added once (the check makes it idempotent).
		if out, err := nsRun(ctx, r, "", "nft", "list", "chain", "inet", "filter", "input"); err != nil {
			return netip.Addr{}, fmt.Errorf("enable IPv6 on %s: %w", h.Name, err)
		} else if !strings.Contains(out, "ipv6-icmp") {
			steps = append(steps, []string{"ip", "netns", "exec", r, "nft", "insert", "rule", "inet", "filter", "input",
				"iifname", wan, "meta", "l4proto", "ipv6-icmp", "accept"})
		}
	default:
		return netip.Addr{}, fmt.Errorf("enable IPv6 on %s: only bridge and NAT hosts", h.Name)
	}
	for _, argv := range steps {
		if _, err := run(ctx, "", argv...); err != nil {
			return netip.Addr{}, fmt.Errorf("enable IPv6 on %s: %w", h.Name, err)
		}
	}
	// Link-local addresses of links that just came up are still in DAD;
	// neighbour discovery and forwarding over them fail until it ends.
	for _, ns := range nss {
		for {
			out, err := run(ctx, "", "ip", "-n", ns, "-6", "addr", "show", "tentative")
			if err != nil {
				return netip.Addr{}, fmt.Errorf("enable IPv6 on %s: %w", h.Name, err)
			}
			if strings.TrimSpace(out) == "" {
				break
			}
			select {
			case <-ctx.Done():
				return netip.Addr{}, fmt.Errorf("enable IPv6 on %s: addresses in %s stay tentative: %s", h.Name, ns, out)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return own, nil
}
