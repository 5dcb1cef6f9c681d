package route

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"petrel/client/netx"
)

// This file turns a Config (plus the host's LAN prefixes) into the desired
// host state as plain data: routes, rules, sysctls and nftables tables. It
// is pure; the platform code diffs it against what it installed.

// rulePrefLAN is the preference of the "to LAN not fwmark Mark lookup Table"
// rules used when an exit node is active without AllowLAN: before the
// suppress rule, so the main table's connected LAN routes cannot win for
// unmarked traffic.
const rulePrefLAN = netx.RulePrefSuppress - 10

// tableMain is the kernel's main routing table.
const tableMain = 254

// Names of the nftables tables (family inet) this package owns.
const (
	nftMarkTable = "petrel-mark" // conntrack mark save/restore for rp_filter
	nftExitTable = "petrel-exit" // kill switch
	nftFwdTable  = "petrel-fwd"  // routing peer: forward filter and masquerade
)

// ownedTables lists every table this package may create, in apply order.
var ownedTables = []string{nftMarkTable, nftExitTable, nftFwdTable}

// optionalTables are installed best effort (a failure degrades, it does not
// fail Apply); the others are required: the user asked for a kill switch,
// and forwarding is never enabled without its filter.
var optionalTables = []string{nftMarkTable}

// Sysctl keys this package may change.
const (
	sysctlForward4    = "net.ipv4.ip_forward"
	sysctlForward6    = "net.ipv6.conf.all.forwarding"
	sysctlSrcValidMrk = "net.ipv4.conf.all.src_valid_mark"
)

// hostLAN is the host's local connected prefixes (on interfaces other than
// the overlay interface and lo), masked.
type hostLAN struct {
	v4, v6 []netip.Prefix
}

// routeSpec is one route in netx.Table.
type routeSpec struct {
	Dst         netip.Prefix
	Table       int
	Dev         string // "" for an unreachable route
	Unreachable bool
}

func (r routeSpec) String() string {
	if r.Unreachable {
		return fmt.Sprintf("unreachable %s table %d", r.Dst, r.Table)
	}
	return fmt.Sprintf("%s dev %s table %d", r.Dst, r.Dev, r.Table)
}

func (r routeSpec) data() map[string]string {
	t := "unicast"
	if r.Unreachable {
		t = "unreachable"
	}
	return map[string]string{"table": strconv.Itoa(r.Table), "dst": r.Dst.String(), "dev": r.Dev, "type": t}
}

func routeFromData(d map[string]string) (routeSpec, error) {
	dst, err := netip.ParsePrefix(d["dst"])
	if err != nil {
		return routeSpec{}, fmt.Errorf("parse route dst: %w", err)
	}
	table, err := strconv.Atoi(d["table"])
	if err != nil {
		return routeSpec{}, fmt.Errorf("parse route table: %w", err)
	}
	r := routeSpec{Dst: dst, Table: table, Dev: d["dev"]}
	switch d["type"] {
	case "unicast":
	case "unreachable":
		r.Unreachable = true
	default:
		return routeSpec{}, fmt.Errorf("parse route type %q", d["type"])
	}
	return r, nil
}

// ruleSpec is one policy rule.
type ruleSpec struct {
	V6       bool
	Pref     int
	Table    int
	Mark     uint32 // fwmark to match; 0 = none
	Invert   bool   // "not"
	Suppress int    // suppress_prefixlength; -1 = none
	Dst      netip.Prefix
}

func (r ruleSpec) String() string {
	var b strings.Builder
	fam := "-4"
	if r.V6 {
		fam = "-6"
	}
	fmt.Fprintf(&b, "%s pref %d", fam, r.Pref)
	if r.Dst.IsValid() {
		fmt.Fprintf(&b, " to %s", r.Dst)
	}
	if r.Invert {
		b.WriteString(" not")
	}
	if r.Mark != 0 {
		fmt.Fprintf(&b, " fwmark %#x", r.Mark)
	}
	fmt.Fprintf(&b, " lookup %d", r.Table)
	if r.Suppress >= 0 {
		fmt.Fprintf(&b, " suppress_prefixlength %d", r.Suppress)
	}
	return b.String()
}

func (r ruleSpec) data() map[string]string {
	d := map[string]string{"family": "4", "pref": strconv.Itoa(r.Pref), "table": strconv.Itoa(r.Table)}
	if r.V6 {
		d["family"] = "6"
	}
	if r.Mark != 0 {
		d["fwmark"] = fmt.Sprintf("%#x", r.Mark)
	}
	if r.Invert {
		d["invert"] = "1"
	}
	if r.Suppress >= 0 {
		d["suppress"] = strconv.Itoa(r.Suppress)
	}
	if r.Dst.IsValid() {
		d["dst"] = r.Dst.String()
	}
	return d
}

func ruleFromData(d map[string]string) (ruleSpec, error) {
	r := ruleSpec{Suppress: -1, V6: d["family"] == "6", Invert: d["invert"] == "1"}
	if f := d["family"]; f != "4" && f != "6" {
		return r, fmt.Errorf("parse rule family %q", f)
	}
	var err error
	if r.Pref, err = strconv.Atoi(d["pref"]); err != nil {
		return r, fmt.Errorf("parse rule pref: %w", err)
	}
	if r.Table, err = strconv.Atoi(d["table"]); err != nil {
		return r, fmt.Errorf("parse rule table: %w", err)
	}
	if s := d["fwmark"]; s != "" {
		v, err := strconv.ParseUint(s, 0, 32)
		if err != nil {
			return r, fmt.Errorf("parse rule fwmark: %w", err)
		}
		r.Mark = uint32(v)
	}
	if s := d["suppress"]; s != "" {
		if r.Suppress, err = strconv.Atoi(s); err != nil {
			return r, fmt.Errorf("parse rule suppress: %w", err)
		}
	}
	if s := d["dst"]; s != "" {
		if r.Dst, err = netip.ParsePrefix(s); err != nil {
			return r, fmt.Errorf("parse rule dst: %w", err)
		}
	}
	return r, nil
}

// sysctlSpec is one sysctl and the value we want.
type sysctlSpec struct {
	Key, Value string
	Optional   bool // best effort: a failure degrades, it does not fail Apply
}

// isForward reports whether key is one of the forwarding sysctls (set only
// after petrel-fwd is in place, restored before it goes).
func isForward(key string) bool { return key == sysctlForward4 || key == sysctlForward6 }

// restoreSysctl decides whether undoing our change of a sysctl writes prev
// back, given its current value and the value we wrote (wrote "" = not
// known, an older journal entry): only while it still holds what we wrote.
// A value someone else set since is theirs and stays.
func restoreSysctl(cur, prev, wrote string) bool {
	if cur == prev {
		return false // nothing to do
	}
	return wrote == "" || cur == wrote
}

// fwdGuard says, per family, whether this Manager turns forwarding on (it
// was off before us). Then petrel-fwd also drops forwarded traffic that
// neither enters nor leaves on the overlay interface: enabling forwarding
// for the overlay must not make the host a router between its other
// interfaces. Forwarding someone else had enabled is left to them.
type fwdGuard struct{ v4, v6 bool }

// desired is the host state for a Config, except the rules, which depend
// on which routes the kernel accepted (see wantRules).
type desired struct {
	routes  []routeSpec
	sysctls []sysctlSpec
	tables  []nftTable // only the tables wanted; owned tables not listed are removed
}

// wantState computes the desired state. A Config with an empty Interface
// wants nothing.
func wantState(cfg Config, lan hostLAN, guard fwdGuard) desired {
	var d desired
	if cfg.Interface == "" {
		return d
	}
	seen := map[netip.Prefix]bool{}
	add := func(p netip.Prefix, unreachable bool) {
		p = p.Masked()
		if !p.IsValid() || seen[p] {
			return
		}
		seen[p] = true
		r := routeSpec{Dst: p, Table: netx.Table, Dev: cfg.Interface}
		if unreachable {
			r.Dev, r.Unreachable = "", true
		}
		d.routes = append(d.routes, r)
	}
	for _, p := range cfg.Routes {
		add(p, false)
	}
	ex := cfg.Exit
	if ex.Active {
		add(netip.PrefixFrom(netip.IPv4Unspecified(), 0), false)
		// ::/0 given as a route means the overlay carries IPv6: nothing to block.
		if ex.BlockIPv6 {
			add(netip.PrefixFrom(netip.IPv6Unspecified(), 0), true)
		}
	}
	slices.SortFunc(d.routes, func(a, b routeSpec) int { return cmpPrefix(a.Dst, b.Dst) })

	if hasFamily(d.routes, false) {
		// Replies to marked sockets must pass strict rp_filter: the reverse
		// lookup uses the packet mark (src_valid_mark) restored from conntrack.
		// Best effort: only strict rp_filter needs it.
		d.sysctls = append(d.sysctls, sysctlSpec{Key: sysctlSrcValidMrk, Value: "1", Optional: true})
		d.tables = append(d.tables, markTable())
	}
	if ex.Active && ex.KillSwitch {
		d.tables = append(d.tables, killSwitchTable(cfg.Interface, ex.AllowLAN, lan))
	}
	if len(cfg.Serve) > 0 {
		var v4, v6 bool
		for _, s := range cfg.Serve {
			v4 = v4 || s.Network.Addr().Is4()
			v6 = v6 || s.Network.Addr().Is6()
		}
		if v4 {
			d.sysctls = append(d.sysctls, sysctlSpec{Key: sysctlForward4, Value: "1"})
		}
		if v6 {
			d.sysctls = append(d.sysctls, sysctlSpec{Key: sysctlForward6, Value: "1"})
		}
		d.tables = append(d.tables, forwardTable(cfg.Interface, cfg.Serve, fwdGuard{v4: v4 && guard.v4, v6: v6 && guard.v6}))
	}
	return d
}

// wantRules returns the policy rules for the routes actually installed:
// the suppress and mark rules per family with a route in the table, and,
// for an exit node without AllowLAN, a LAN rule per local prefix.
//
// Decision (no AllowLAN): "to LAN not fwmark Mark lookup Table" at
// rulePrefLAN sends unmarked traffic to every local connected prefix (all
// interfaces but the overlay and lo, bridges included) into the tunnel,
// where the exit node's default route takes it; marked sockets skip the
// rule, so the WireGuard and control-plane traffic still reaches a gateway
// or peer on the LAN. IPv6 LAN prefixes get the same rule when IPv6 rules
// exist (BlockIPv6 then makes them unreachable). Link-local prefixes are
// never redirected: they cannot be routed anyway.
func wantRules(cfg Config, installed []routeSpec, lan hostLAN) []ruleSpec {
	var out []ruleSpec
	for _, v6 := range []bool{false, true} {
		if !hasFamily(installed, v6) {
			continue
		}
		if cfg.Exit.Active && !cfg.Exit.AllowLAN {
			prefixes := lan.v4
			if v6 {
				prefixes = lan.v6
			}
			for _, p := range prefixes {
				if p.Addr().IsLinkLocalUnicast() {
					continue
				}
				out = append(out, ruleSpec{V6: v6, Pref: rulePrefLAN, Table: netx.Table, Mark: netx.Mark, Invert: true, Suppress: -1, Dst: p})
			}
		}
		out = append(out,
			ruleSpec{V6: v6, Pref: netx.RulePrefSuppress, Table: tableMain, Suppress: 0},
			ruleSpec{V6: v6, Pref: netx.RulePrefMark, Table: netx.Table, Mark: netx.Mark, Invert: true, Suppress: -1},
		)
	}
	return out
}

// teardownOrder returns rules in the order Close deletes them: by
// descending preference, so the mark rule (netx.RulePrefMark) goes before
// the suppress rule (netx.RulePrefSuppress): unmarked traffic never reaches
// the mark rule's lookup of netx.Table without the suppress rule first.
func teardownOrder(rs []ruleSpec) []ruleSpec {
	out := slices.Clone(rs)
	slices.SortStableFunc(out, func(a, b ruleSpec) int { return cmp.Compare(b.Pref, a.Pref) })
	return out
}

func hasFamily(rs []routeSpec, v6 bool) bool {
	for _, r := range rs {
		if r.Dst.Addr().Is6() == v6 {
			return true
		}
	}
	return false
}

// diff returns the elements of want missing from have (add) and those of
// have missing from want (del), keyed by their String form.
func diff[T fmt.Stringer](have, want []T) (add, del []T) {
	h := make(map[string]bool, len(have))
	for _, x := range have {
		h[x.String()] = true
	}
	w := make(map[string]bool, len(want))
	for _, x := range want {
		w[x.String()] = true
		if !h[x.String()] {
			add = append(add, x)
		}
	}
	for _, x := range have {
		if !w[x.String()] {
			del = append(del, x)
		}
	}
	return add, del
}

func cmpPrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// sysctlPath maps a sysctl key to its /proc/sys path.
func sysctlPath(key string) string {
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
}

// knownSysctl and knownTable guard the undo of journal entries: a corrupt
// or foreign entry must not write arbitrary sysctls or delete other tables.
func knownSysctl(key string) bool {
	return key == sysctlForward4 || key == sysctlForward6 || key == sysctlSrcValidMrk
}

func knownTable(name string) bool { return slices.Contains(ownedTables, name) }
