package dns

import (
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
)

// canonName returns s lower-cased and fully qualified, or false when s is
// empty, an IP literal or not a valid domain name.
func canonName(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", false
	}
	if _, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return "", false
	}
	s = strings.ToLower(mdns.Fqdn(s))
	if _, ok := mdns.IsDomainName(s); !ok || len(s) > 254 {
		return "", false
	}
	return s, true
}

// inDomain reports whether name equals domain or lies below it. Both are
// lower-case and fully qualified; "." contains every name.
func inDomain(name, domain string) bool {
	if domain == "." || name == domain {
		return true
	}
	return len(name) > len(domain) && strings.HasSuffix(name, domain) && name[len(name)-len(domain)-1] == '.'
}

// parentName strips the first label: "a.b.c." → "b.c.", "c." → ".".
func parentName(name string) string {
	i := strings.IndexByte(name, '.')
	if i < 0 || i == len(name)-1 {
		return "."
	}
	return name[i+1:]
}

// labelCount counts the labels of a canonical name ("." has none).
func labelCount(name string) int {
	if name == "." {
		return 0
	}
	return strings.Count(name, ".")
}

// normAddrPort unmaps v4-in-v6 addresses and defaults port 0 to 53.
func normAddrPort(ap netip.AddrPort) netip.AddrPort {
	port := ap.Port()
	if port == 0 {
		port = 53
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), port)
}

// reverseAddr parses a full reverse-lookup name ("4.3.2.1.in-addr.arpa." or
// 32 nibbles under "ip6.arpa.") into an address.
func reverseAddr(name string) (netip.Addr, bool) {
	switch {
	case strings.HasSuffix(name, ".in-addr.arpa."):
		labels := strings.Split(strings.TrimSuffix(name, ".in-addr.arpa."), ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			n, ok := parseOctet(l)
			if !ok {
				return netip.Addr{}, false
			}
			b[3-i] = n
		}
		return netip.AddrFrom4(b), true
	case strings.HasSuffix(name, ".ip6.arpa."):
		labels := strings.Split(strings.TrimSuffix(name, ".ip6.arpa."), ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			if len(l) != 1 {
				return netip.Addr{}, false
			}
			v := strings.IndexByte("0123456789abcdef", l[0])
			if v < 0 {
				return netip.Addr{}, false
			}
			pos := 31 - i
			if pos%2 == 0 {
				b[pos/2] |= byte(v) << 4
			} else {
				b[pos/2] |= byte(v)
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

func parseOctet(s string) (byte, bool) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > 255 {
		return 0, false
	}
	return byte(n), true
}

// reverseZone returns the reverse-lookup domain covering p, widened to the
// enclosing octet (IPv4) or nibble (IPv6) boundary.
func reverseZone(p netip.Prefix) string {
	p = p.Masked()
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		n := p.Bits() / 8
		var sb strings.Builder
		for i := n - 1; i >= 0; i-- {
			sb.WriteString(itoa(int(b[i])))
			sb.WriteByte('.')
		}
		sb.WriteString("in-addr.arpa.")
		return sb.String()
	}
	b := a.As16()
	n := p.Bits() / 4
	var sb strings.Builder
	for i := n - 1; i >= 0; i-- {
		v := b[i/2]
		if i%2 == 0 {
			v >>= 4
		}
		sb.WriteByte("0123456789abcdef"[v&0xf])
		sb.WriteByte('.')
	}
	sb.WriteString("ip6.arpa.")
	return sb.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [4]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
