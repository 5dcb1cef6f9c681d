package route

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"petrel/client/netx"
)

// This file describes this package's nftables tables as data (a tiny subset
// of nft: the matches and statements we use) and renders them in nft's
// syntax. The rendering is the table's fingerprint (Apply rewrites a table
// only when it changed) and what unit tests compare; nft_linux.go compiles
// the same data into netlink expressions.

// nftTable is one table of family inet.
type nftTable struct {
	Name   string
	Sets   []nftSet
	Chains []nftChain
}

// nftSet is a named interval set of addresses.
type nftSet struct {
	Name  string
	V6    bool
	Elems []netip.Prefix
}

// nftChain is a base chain with policy accept.
type nftChain struct {
	Name  string
	Type  string // "filter" or "nat"
	Hook  string // "prerouting", "output", "forward", "postrouting"
	Prio  int
	Rules []nftRule
}

// nftRule is a conjunction of matches and one statement.
type nftRule struct {
	Match []nftMatch
	Do    nftStmt
}

type nftMatchKind int

const (
	matchMetaMark nftMatchKind = iota // meta mark == Mark
	matchCtMark                       // ct mark == Mark
	matchOifname                      // oifname (!)= Name
	matchIifname                      // iifname (!)= Name
	matchDaddr                        // ip/ip6 daddr in Prefix (nfproto only for /0)
	matchSaddrSet                     // ip/ip6 saddr @Set
	matchCtEstRel                     // ct state established,related
)

type nftMatch struct {
	Kind   nftMatchKind
	Not    bool
	Mark   uint32
	Name   string // interface or set name
	Prefix netip.Prefix
	V6     bool // for matchSaddrSet
}

type nftStmt int

const (
	stmtAccept      nftStmt = iota
	stmtDrop                // drop
	stmtMasquerade          // masquerade
	stmtRestoreMark         // meta mark set ct mark
	stmtSaveMark            // ct mark set meta mark
)

func (m nftMatch) String() string {
	not := ""
	if m.Not {
		not = "!= "
	}
	switch m.Kind {
	case matchMetaMark:
		return fmt.Sprintf("meta mark %#x", m.Mark)
	case matchCtMark:
		return fmt.Sprintf("ct mark %#x", m.Mark)
	case matchOifname:
		return fmt.Sprintf("oifname %s%q", not, m.Name)
	case matchIifname:
		return fmt.Sprintf("iifname %s%q", not, m.Name)
	case matchDaddr:
		if m.Prefix.Bits() == 0 {
			return "meta nfproto " + ipFamily(m.Prefix.Addr().Is6())
		}
		return fmt.Sprintf("%s daddr %s", ipKeyword(m.Prefix.Addr().Is6()), m.Prefix)
	case matchSaddrSet:
		return fmt.Sprintf("%s saddr @%s", ipKeyword(m.V6), m.Name)
	case matchCtEstRel:
		return "ct state established,related"
	}
	return "?"
}

func (s nftStmt) String() string {
	return [...]string{"accept", "drop", "masquerade", "meta mark set ct mark", "ct mark set meta mark"}[s]
}

func ipKeyword(v6 bool) string {
	if v6 {
		return "ip6"
	}
	return "ip"
}

func ipFamily(v6 bool) string {
	if v6 {
		return "ipv6"
	}
	return "ipv4"
}

// String renders t in nft syntax (close to `nft list table`).
func (t nftTable) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", t.Name)
	for _, s := range t.Sets {
		fmt.Fprintf(&b, "\tset %s { type %s_addr; flags interval; elements = { ", s.Name, ipKeyword(s.V6))
		for i, e := range s.Elems {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(e.String())
		}
		b.WriteString(" } }\n")
	}
	for _, c := range t.Chains {
		fmt.Fprintf(&b, "\tchain %s { type %s hook %s priority %d; policy accept;\n", c.Name, c.Type, c.Hook, c.Prio)
		for _, r := range c.Rules {
			b.WriteString("\t\t")
			for _, m := range r.Match {
				b.WriteString(m.String() + " ")
			}
			b.WriteString(r.Do.String() + "\n")
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// markTable saves the mark of marked (control-plane) connections in
// conntrack and restores it on their incoming packets, so that with
// net.ipv4.conf.all.src_valid_mark=1 strict rp_filter validates replies
// against the main table instead of the overlay default in netx.Table.
func markTable() nftTable {
	mark := nftMatch{Kind: matchMetaMark, Mark: netx.Mark}
	ct := nftMatch{Kind: matchCtMark, Mark: netx.Mark}
	return nftTable{Name: nftMarkTable, Chains: []nftChain{
		{Name: "pre", Type: "filter", Hook: "prerouting", Prio: -150, Rules: []nftRule{
			{Match: []nftMatch{ct}, Do: stmtRestoreMark},
		}},
		{Name: "out", Type: "filter", Hook: "output", Prio: -150, Rules: []nftRule{
			{Match: []nftMatch{mark}, Do: stmtSaveMark},
		}},
	}}
}

// killSwitchTable drops unmarked traffic leaving on any interface but lo and
// the overlay. IPv6 link-local and link-local multicast (neighbour
// discovery, which the underlay needs for marked IPv6 traffic) are always
// allowed; the LAN (IPv4 and IPv6 prefixes, and IPv4 broadcast) only with
// allowLAN. This is consistent with BlockIPv6: whatever IPv6 escapes the
// unreachable route (link-local, LAN) is exactly what the kill switch lets
// through.
func killSwitchTable(ifname string, allowLAN bool, lan hostLAN) nftTable {
	accept := func(m ...nftMatch) nftRule { return nftRule{Match: m, Do: stmtAccept} }
	daddr := func(p string) nftMatch { return nftMatch{Kind: matchDaddr, Prefix: netip.MustParsePrefix(p)} }
	rules := []nftRule{
		accept(nftMatch{Kind: matchMetaMark, Mark: netx.Mark}),
		accept(nftMatch{Kind: matchOifname, Name: "lo"}),
		accept(nftMatch{Kind: matchOifname, Name: ifname}),
		accept(daddr("fe80::/10")),
		accept(daddr("ff02::/16")),
	}
	if allowLAN {
		for _, p := range slices.Concat(lan.v4, lan.v6) {
			if p.Addr().IsLinkLocalUnicast() && p.Addr().Is6() {
				continue // covered above
			}
			rules = append(rules, accept(nftMatch{Kind: matchDaddr, Prefix: p}))
		}
		rules = append(rules, accept(daddr("255.255.255.255/32")))
	}
	rules = append(rules, nftRule{Do: stmtDrop})
	return nftTable{Name: nftExitTable, Chains: []nftChain{
		{Name: "out", Type: "filter", Hook: "output", Prio: 0, Rules: rules},
	}}
}

// forwardTable is the routing-peer table: from the overlay interface,
// established/related traffic is accepted, new traffic only to a served
// network from its sources (one set per network), the rest dropped; and
// traffic from the overlay to a Masquerade network leaving on another
// interface is masqueraded. For each family of guard (we turned its
// forwarding on), forwarded traffic neither from nor to the overlay
// interface is dropped too.
func forwardTable(ifname string, serve []Serve, guard fwdGuard) nftTable {
	iif := nftMatch{Kind: matchIifname, Name: ifname}
	t := nftTable{Name: nftFwdTable}
	fwd := nftChain{Name: "fwd", Type: "filter", Hook: "forward", Prio: 0, Rules: []nftRule{
		{Match: []nftMatch{iif, {Kind: matchCtEstRel}}, Do: stmtAccept},
	}}
	nat := nftChain{Name: "nat", Type: "nat", Hook: "postrouting", Prio: 100}
	for i, s := range serve {
		n := s.Network.Masked()
		v6 := n.Addr().Is6()
		var elems []netip.Prefix
		for _, src := range s.Sources {
			if src.IsValid() && src.Addr().Is6() == v6 {
				elems = append(elems, src.Masked())
			}
		}
		elems = mergePrefixes(elems)
		dst := nftMatch{Kind: matchDaddr, Prefix: n}
		if len(elems) > 0 {
			name := fmt.Sprintf("src%d", i)
			t.Sets = append(t.Sets, nftSet{Name: name, V6: v6, Elems: elems})
			fwd.Rules = append(fwd.Rules, nftRule{Match: []nftMatch{iif, dst, {Kind: matchSaddrSet, Name: name, V6: v6}}, Do: stmtAccept})
		}
		if s.Masquerade {
			nat.Rules = append(nat.Rules, nftRule{Match: []nftMatch{iif, {Kind: matchOifname, Not: true, Name: ifname}, dst}, Do: stmtMasquerade})
		}
	}
	fwd.Rules = append(fwd.Rules, nftRule{Match: []nftMatch{iif}, Do: stmtDrop})
	notIif := nftMatch{Kind: matchIifname, Not: true, Name: ifname}
	notOif := nftMatch{Kind: matchOifname, Not: true, Name: ifname}
	for _, g := range []struct {
		on  bool
		any netip.Prefix
	}{{guard.v4, netip.PrefixFrom(netip.IPv4Unspecified(), 0)}, {guard.v6, netip.PrefixFrom(netip.IPv6Unspecified(), 0)}} {
		if g.on {
			fwd.Rules = append(fwd.Rules, nftRule{Match: []nftMatch{{Kind: matchDaddr, Prefix: g.any}, notIif, notOif}, Do: stmtDrop})
		}
	}
	t.Chains = append(t.Chains, fwd)
	if len(nat.Rules) > 0 {
		t.Chains = append(t.Chains, nat)
	}
	return t
}

// mergePrefixes sorts ps and drops prefixes contained in another, so the
// result can be loaded into an interval set (the kernel refuses overlaps).
func mergePrefixes(ps []netip.Prefix) []netip.Prefix {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, cmpPrefix)
	var out []netip.Prefix
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Bits() <= p.Bits() && out[n-1].Contains(p.Addr()) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// intervalRanges turns sorted, non-overlapping prefixes into [start, end)
// ranges, joining adjacent ones; end is invalid when a range runs to the
// top of the address space.
func intervalRanges(ps []netip.Prefix) [][2]netip.Addr {
	var out [][2]netip.Addr
	for _, p := range ps {
		start := p.Addr()
		end := lastAddr(p).Next()
		if n := len(out); n > 0 && out[n-1][1] == start {
			out[n-1][1] = end
			continue
		}
		out = append(out, [2]netip.Addr{start, end})
	}
	return out
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
