package firewall

import (
	"math"
	"net/netip"
	"slices"
	"sync/atomic"
)

// cRule is a compiled Rule.
type cRule struct {
	id, policyID string
	action       Action
	proto        Proto
	ports        []PortRange // normalised (Start <= End); nil = all
}

// ruleRefs lists, per direction and packet class, the indexes (ascending)
// of the rules whose Peers contain one address or prefix.
type ruleRefs [2][numClasses][]int32

func (r *ruleRefs) add(dir Direction, proto Proto, idx int32) {
	for c := class(0); c < numClasses; c++ {
		if !protoCovers(proto, c) {
			continue
		}
		l := r[dir][c]
		if n := len(l); n > 0 && l[n-1] == idx {
			continue // the rule listed the address twice
		}
		r[dir][c] = append(l, idx)
	}
}

func protoCovers(p Proto, c class) bool {
	switch p {
	case All:
		return true
	case TCP:
		return c == clsTCP
	case UDP:
		return c == clsUDP
	case ICMP:
		return c == clsICMP
	}
	return false
}

// counters are one remote address's packet counters. They survive Apply
// for addresses that stay in the rule set.
type counters struct {
	inOK, inDrop, outOK, outDrop atomic.Uint64
}

func (c *counters) count(dir Direction, ok bool) {
	switch {
	case dir == In && ok:
		c.inOK.Add(1)
	case dir == In:
		c.inDrop.Add(1)
	case ok:
		c.outOK.Add(1)
	default:
		c.outDrop.Add(1)
	}
}

// add counts n allowed packets in direction dir.
func (c *counters) add(dir Direction, n uint64) {
	if dir == In {
		c.inOK.Add(n)
	} else {
		c.outOK.Add(n)
	}
}

type addrInfo struct {
	refs ruleRefs
	ctr  *counters
}

// prefixLevel holds the rules of all Peers prefixes of one length.
type prefixLevel struct {
	bits int
	m    map[netip.Prefix]*ruleRefs
}

// table is an immutable compiled rule set; the Filter swaps it atomically.
type table struct {
	gen    uint64
	rules  []cRule
	byAddr map[netip.Addr]*addrInfo // single-address Peers entries
	pfx4   []prefixLevel            // longer prefixes first
	pfx6   []prefixLevel
	self   []netip.Addr
	routed []netip.Prefix
	other  *counters // remote addresses not in byAddr
}

// compile builds the table for cfg. prev (may be nil) lends its counters.
func compile(cfg Config, gen uint64, prev *table, other *counters) *table {
	t := &table{gen: gen, byAddr: map[netip.Addr]*addrInfo{}, other: other}
	for _, p := range cfg.Self {
		if p.IsValid() {
			t.self = append(t.self, p.Addr().Unmap()) // only the address counts
		}
	}
	for _, p := range cfg.Routed {
		if p, ok := normPrefix(p); ok {
			t.routed = append(t.routed, p)
		}
	}
	levels := map[int]map[netip.Prefix]*ruleRefs{} // key: bits, +1000 for IPv6
	for i, r := range cfg.Rules {
		idx := int32(i)
		t.rules = append(t.rules, cRule{id: r.ID, policyID: r.PolicyID, action: r.Action,
			proto: r.Proto, ports: normPorts(r.Ports)})
		if r.Direction > Out || r.Proto > ICMP || r.Action > Drop {
			continue // unknown enum: the rule matches nothing
		}
		for _, p := range r.Peers {
			p, ok := normPrefix(p)
			if !ok {
				continue
			}
			if p.IsSingleIP() {
				a := p.Addr()
				if slices.Contains(t.self, a) {
					continue // a packet never comes from self through the tunnel
				}
				ai := t.byAddr[a]
				if ai == nil {
					ai = &addrInfo{ctr: &counters{}}
					if prev != nil {
						if old := prev.byAddr[a]; old != nil {
							ai.ctr = old.ctr
						}
					}
					t.byAddr[a] = ai
				}
				ai.refs.add(r.Direction, r.Proto, idx)
				continue
			}
			key := p.Bits()
			if p.Addr().Is6() {
				key += 1000
			}
			m := levels[key]
			if m == nil {
				m = map[netip.Prefix]*ruleRefs{}
				levels[key] = m
			}
			rr := m[p]
			if rr == nil {
				rr = &ruleRefs{}
				m[p] = rr
			}
			rr.add(r.Direction, r.Proto, idx)
		}
	}
	for key, m := range levels {
		if key >= 1000 {
			t.pfx6 = append(t.pfx6, prefixLevel{bits: key - 1000, m: m})
		} else {
			t.pfx4 = append(t.pfx4, prefixLevel{bits: key, m: m})
		}
	}
	byLen := func(a, b prefixLevel) int { return b.bits - a.bits }
	slices.SortFunc(t.pfx4, byLen)
	slices.SortFunc(t.pfx6, byLen)
	return t
}

func normPrefix(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return p, false
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return p, false
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), true
}

func normPorts(ps []PortRange) []PortRange {
	if len(ps) == 0 {
		return nil
	}
	out := make([]PortRange, len(ps))
	for i, p := range ps {
		if p.End < p.Start {
			p.End = p.Start
		}
		out[i] = p
	}
	return out
}

// matches reports whether r matches a packet of class c to port dport
// (the list r came from already selected the protocol).
func (r *cRule) matches(c class, dport uint16) bool {
	if r.proto == ICMP || r.ports == nil {
		return true
	}
	if c != clsTCP && c != clsUDP {
		return false // a rule with ports needs a packet with ports
	}
	for _, pr := range r.ports {
		if dport >= pr.Start && dport <= pr.End {
			return true
		}
	}
	return false
}

// verdict is the decision for a new flow.
type verdict struct {
	ok     bool
	rule   int32 // -1: none
	reason string
}

const (
	reasonRule      = "rule"
	reasonDropRule  = "drop rule"
	reasonNoRule    = "no matching rule (default deny)"
	reasonNotServed = "destination is neither this agent nor a routed network"
	reasonTableFull = "conntrack table full"
	reasonPeerFull  = "conntrack limit for this remote reached"
)

// decide evaluates a new flow: dir In means remote → local, Out local →
// remote. Drop wins over accept; no match denies.
func (t *table) decide(dir Direction, remote, local netip.Addr, c class, dport uint16) verdict {
	if dir == In && !slices.Contains(t.self, local) && !t.isRouted(local) {
		return verdict{rule: -1, reason: reasonNotServed}
	}
	bestAcc, bestDrop := int32(math.MaxInt32), int32(math.MaxInt32)
	scan := func(l []int32) {
		for _, idx := range l {
			r := &t.rules[idx]
			if (r.action == Drop && idx >= bestDrop) || (r.action == Accept && idx >= bestAcc) {
				continue
			}
			if r.matches(c, dport) {
				if r.action == Drop {
					bestDrop = idx
				} else {
					bestAcc = idx
				}
			}
		}
	}
	if ai := t.byAddr[remote]; ai != nil {
		scan(ai.refs[dir][c])
	}
	levels := t.pfx4
	if remote.Is6() {
		levels = t.pfx6
	}
	for _, lv := range levels {
		p, _ := remote.Prefix(lv.bits)
		if rr := lv.m[p]; rr != nil {
			scan(rr[dir][c])
		}
	}
	switch {
	case bestDrop != math.MaxInt32:
		return verdict{rule: bestDrop, reason: reasonDropRule}
	case bestAcc != math.MaxInt32:
		return verdict{ok: true, rule: bestAcc, reason: reasonRule}
	}
	return verdict{rule: -1, reason: reasonNoRule}
}

func (t *table) isRouted(a netip.Addr) bool {
	for _, p := range t.routed {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (t *table) counters(remote netip.Addr) *counters {
	if ai := t.byAddr[remote]; ai != nil {
		return ai.ctr
	}
	return t.other
}
