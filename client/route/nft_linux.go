//go:build linux

package route

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// nftConn opens a (non-lasting) nftables connection in the namespace of
// nsFd (-1 = the calling thread's).
func nftConn(nsFd int) (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if nsFd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(nsFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("open nftables: %w", err)
	}
	return c, nil
}

// queueDeleteTable queues the removal of table inet name; adding it first
// makes the batch succeed whether or not the table exists.
func queueDeleteTable(c *nftables.Conn, name string) {
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: name}
	c.AddTable(t)
	c.DelTable(t)
}

// queueTable queues an atomic replacement of t's table: delete (whatever
// is there) and create it with t's content, all in the caller's batch.
func queueTable(c *nftables.Conn, t nftTable) error {
	queueDeleteTable(c, t.Name)
	tab := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: t.Name})
	sets := map[string]*nftables.Set{}
	for _, s := range t.Sets {
		set := &nftables.Set{Table: tab, Name: s.Name, Interval: true, KeyType: nftables.TypeIPAddr}
		if s.V6 {
			set.KeyType = nftables.TypeIP6Addr
		}
		if err := c.AddSet(set, setElements(s)); err != nil {
			return fmt.Errorf("add set %s: %w", s.Name, err)
		}
		sets[s.Name] = set
	}
	for _, ch := range t.Chains {
		hook := map[string]*nftables.ChainHook{
			"prerouting": nftables.ChainHookPrerouting, "output": nftables.ChainHookOutput,
			"forward": nftables.ChainHookForward, "postrouting": nftables.ChainHookPostrouting,
		}[ch.Hook]
		typ := nftables.ChainTypeFilter
		if ch.Type == "nat" {
			typ = nftables.ChainTypeNAT
		}
		policy := nftables.ChainPolicyAccept
		chain := c.AddChain(&nftables.Chain{
			Name: ch.Name, Table: tab, Type: typ, Hooknum: hook,
			Priority: nftables.ChainPriorityRef(nftables.ChainPriority(ch.Prio)), Policy: &policy,
		})
		for _, r := range ch.Rules {
			var exprs []expr.Any
			for _, m := range r.Match {
				exprs = append(exprs, compileMatch(m, sets)...)
			}
			exprs = append(exprs, compileStmt(r.Do)...)
			c.AddRule(&nftables.Rule{Table: tab, Chain: chain, Exprs: exprs})
		}
	}
	return nil
}

// setElements encodes an interval set the way nft does: a leading interval
// end at the zero address, then each range's start and (unless it runs to
// the top of the address space) its exclusive end.
func setElements(s nftSet) []nftables.SetElement {
	var out []nftables.SetElement
	rs := intervalRanges(s.Elems)
	if len(rs) > 0 && !rs[0][0].IsUnspecified() {
		zero := netip.IPv4Unspecified()
		if s.V6 {
			zero = netip.IPv6Unspecified()
		}
		out = append(out, nftables.SetElement{Key: zero.AsSlice(), IntervalEnd: true})
	}
	for _, r := range rs {
		out = append(out, nftables.SetElement{Key: r[0].AsSlice()})
		if r[1].IsValid() {
			out = append(out, nftables.SetElement{Key: r[1].AsSlice(), IntervalEnd: true})
		}
	}
	return out
}

func cmpEq(data []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data} }

// ifname pads an interface name as the kernel compares it (IFNAMSIZ).
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

func nfproto(v6 bool) []expr.Any {
	p := byte(unix.NFPROTO_IPV4)
	if v6 {
		p = unix.NFPROTO_IPV6
	}
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmpEq([]byte{p})}
}

// addrField returns the offset and length of the source or destination
// address in the network header.
func addrField(v6, dst bool) (off, n uint32) {
	switch {
	case v6 && dst:
		return 24, 16
	case v6:
		return 8, 16
	case dst:
		return 16, 4
	}
	return 12, 4
}

func compileMatch(m nftMatch, sets map[string]*nftables.Set) []expr.Any {
	switch m.Kind {
	case matchMetaMark:
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyMARK, Register: 1}, cmpEq(binaryutil.NativeEndian.PutUint32(m.Mark))}
	case matchCtMark:
		return []expr.Any{&expr.Ct{Key: expr.CtKeyMARK, Register: 1}, cmpEq(binaryutil.NativeEndian.PutUint32(m.Mark))}
	case matchOifname, matchIifname:
		key := expr.MetaKeyOIFNAME
		if m.Kind == matchIifname {
			key = expr.MetaKeyIIFNAME
		}
		c := cmpEq(ifname(m.Name))
		if m.Not {
			c.Op = expr.CmpOpNeq
		}
		return []expr.Any{&expr.Meta{Key: key, Register: 1}, c}
	case matchDaddr:
		v6 := m.Prefix.Addr().Is6()
		out := nfproto(v6)
		if m.Prefix.Bits() == 0 {
			return out
		}
		off, n := addrField(v6, true)
		mask := netmask(m.Prefix)
		return append(out,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)},
			cmpEq(m.Prefix.Masked().Addr().AsSlice()))
	case matchSaddrSet:
		off, n := addrField(m.V6, false)
		set := sets[m.Name]
		return append(nfproto(m.V6),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
			&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID})
	case matchCtEstRel:
		return []expr.Any{
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		}
	}
	panic(fmt.Sprintf("route: unknown nft match %d", m.Kind))
}

func compileStmt(s nftStmt) []expr.Any {
	switch s {
	case stmtAccept:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}
	case stmtDrop:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}
	case stmtMasquerade:
		return []expr.Any{&expr.Masq{}}
	case stmtRestoreMark:
		return []expr.Any{&expr.Ct{Key: expr.CtKeyMARK, Register: 1}, &expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1}}
	case stmtSaveMark:
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyMARK, Register: 1}, &expr.Ct{Key: expr.CtKeyMARK, SourceRegister: true, Register: 1}}
	}
	panic(fmt.Sprintf("route: unknown nft statement %d", s))
}

func netmask(p netip.Prefix) []byte {
	b := make([]byte, p.Addr().BitLen()/8)
	for i := range p.Bits() {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return b
}

// listOwnedTables returns which of our tables exist.
func listOwnedTables(c *nftables.Conn) (map[string]bool, error) {
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: %w", err)
	}
	out := map[string]bool{}
	for _, t := range ts {
		out[t.Name] = true
	}
	return out, nil
}

// tableIntact reports whether t is in the kernel with its chains and no
// others, each holding as many rules as t's, and its sets: a deleted table,
// chain or set, and rules flushed, added or deleted, are noticed; an edit
// that keeps these counts (a rule replaced in place, set elements changed)
// is not. It costs a few netlink dumps.
func tableIntact(c *nftables.Conn, t nftTable) (bool, error) {
	have, err := listOwnedTables(c)
	if err != nil || !have[t.Name] {
		return false, err
	}
	tab := &nftables.Table{Family: nftables.TableFamilyINet, Name: t.Name}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("list nftables chains: %w", err)
	}
	var names []string
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == t.Name {
			names = append(names, ch.Name)
		}
	}
	if len(names) != len(t.Chains) {
		return false, nil
	}
	for _, ch := range t.Chains {
		if !slices.Contains(names, ch.Name) {
			return false, nil
		}
		rules, err := c.GetRules(tab, &nftables.Chain{Name: ch.Name, Table: tab})
		if err != nil {
			return false, fmt.Errorf("list rules of %s %s: %w", t.Name, ch.Name, err)
		}
		if len(rules) != len(ch.Rules) {
			return false, nil
		}
	}
	sets, err := c.GetSets(tab)
	if err != nil {
		return false, fmt.Errorf("list sets of %s: %w", t.Name, err)
	}
	if len(sets) != len(t.Sets) {
		return false, nil
	}
	for _, s := range t.Sets {
		if !slices.ContainsFunc(sets, func(x *nftables.Set) bool { return x.Name == s.Name }) {
			return false, nil
		}
	}
	return true, nil
}
