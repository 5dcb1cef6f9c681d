package policyfile

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Normalizing the values the API normalizes, so that a re-apply compares
// equal to what the server stored.

// canonicalPorts parses ports as the API does: "80", 80 or "8000-8080".
func canonicalPorts(ports []Port) ([]string, error) {
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(string(p)), "-")
		a, err := parsePortNumber(lo)
		if err != nil {
			return nil, fmt.Errorf("bad port %q: expected 1-65535 or a range such as 8000-8080", p)
		}
		if !isRange {
			out = append(out, strconv.Itoa(a))
			continue
		}
		b, err := parsePortNumber(hi)
		if err != nil || b < a {
			return nil, fmt.Errorf("bad port range %q", p)
		}
		if a == b {
			out = append(out, strconv.Itoa(a))
		} else {
			out = append(out, fmt.Sprintf("%d-%d", a, b))
		}
	}
	return out, nil
}

func parsePortNumber(s string) (int, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, errors.New("bad port")
	}
	return int(n), nil
}

// oneOf lowercases s and checks it against allowed; "" is def.
func oneOf(what, s, def string, allowed ...string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return def, nil
	}
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", fmt.Errorf("bad %s %q: expected %s", what, s, strings.Join(allowed, ", "))
}

// canonicalNameserver is "ip:port" as the API prints it (port 53 when
// left out).
func canonicalNameserver(s string) (string, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.AddrPortFrom(a.Unmap(), 53).String(), nil
	}
	return "", fmt.Errorf("nameserver %q: expected an IP address, optionally with :port", s)
}

// canonicalDomain lowercases a domain and drops a trailing dot.
func canonicalDomain(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// canonicalRecord fills in what the API defaults: "@" for the apex, TTL
// 300, an upper-case type.
func canonicalRecord(r Record) (Record, error) {
	r.Name = strings.TrimSpace(r.Name)
	if r.Name == "" {
		r.Name = "@"
	}
	r.Type = strings.ToUpper(strings.TrimSpace(r.Type))
	switch r.Type {
	case "A", "AAAA", "CNAME", "TXT":
	default:
		return r, fmt.Errorf("record %q: type %q not supported (A, AAAA, CNAME, TXT)", r.Name, r.Type)
	}
	if r.TTL == 0 {
		r.TTL = 300
	}
	return r, nil
}

// canonicalNetwork parses a route network; host bits are refused as the
// API refuses them.
func canonicalNetwork(s string) (string, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("network %q: expected a CIDR prefix such as 10.20.0.0/24 or 0.0.0.0/0", s)
	}
	if p.Masked() != p {
		return "", fmt.Errorf("network %s has host bits set; did you mean %s?", p, p.Masked())
	}
	return p.String(), nil
}
