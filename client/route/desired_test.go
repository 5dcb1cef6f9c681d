package route

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"petrel/client/netx"
)

func mp(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func routeStrings(rs []routeSpec) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}

func ruleStrings(rs []ruleSpec) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}

func TestWantStateNetstackWantsNothing(t *testing.T) {
	d := wantState(Config{Routes: []netip.Prefix{mp("10.0.0.0/8")}, Exit: Exit{Active: true, KillSwitch: true}, Serve: []Serve{{Network: mp("10.1.0.0/16")}}}, hostLAN{}, fwdGuard{})
	if len(d.routes)+len(d.sysctls)+len(d.tables) != 0 {
		t.Fatalf("netstack mode wants %+v", d)
	}
}

func TestWantStateRoutes(t *testing.T) {
	lan := hostLAN{v4: []netip.Prefix{mp("192.168.1.0/24")}, v6: []netip.Prefix{mp("2001:db8:1::/64"), mp("fe80::/64")}}
	tests := []struct {
		name   string
		cfg    Config
		routes []string
		rules  []string
		tables []string
		sysctl []string
	}{
		{
			name:   "network routes, masked and deduplicated",
			cfg:    Config{Interface: "pt0", Routes: []netip.Prefix{mp("10.1.2.3/16"), mp("10.1.0.0/16"), mp("172.16.0.0/12")}},
			routes: []string{"10.1.0.0/16 dev pt0 table 7120", "172.16.0.0/12 dev pt0 table 7120"},
			rules:  []string{"-4 pref 7100 lookup 254 suppress_prefixlength 0", "-4 pref 7110 not fwmark 0x7120 lookup 7120"},
			tables: []string{nftMarkTable},
			sysctl: []string{sysctlSrcValidMrk},
		},
		{
			name:   "exit with LAN, block IPv6, kill switch",
			cfg:    Config{Interface: "pt0", Exit: Exit{Active: true, AllowLAN: true, KillSwitch: true, BlockIPv6: true}},
			routes: []string{"0.0.0.0/0 dev pt0 table 7120", "unreachable ::/0 table 7120"},
			rules: []string{"-4 pref 7100 lookup 254 suppress_prefixlength 0", "-4 pref 7110 not fwmark 0x7120 lookup 7120",
				"-6 pref 7100 lookup 254 suppress_prefixlength 0", "-6 pref 7110 not fwmark 0x7120 lookup 7120"},
			tables: []string{nftMarkTable, nftExitTable},
			sysctl: []string{sysctlSrcValidMrk},
		},
		{
			name:   "exit without LAN: LAN rules before the suppress rule, link-local never",
			cfg:    Config{Interface: "pt0", Exit: Exit{Active: true, BlockIPv6: true}},
			routes: []string{"0.0.0.0/0 dev pt0 table 7120", "unreachable ::/0 table 7120"},
			rules: []string{"-4 pref 7090 to 192.168.1.0/24 not fwmark 0x7120 lookup 7120",
				"-4 pref 7100 lookup 254 suppress_prefixlength 0", "-4 pref 7110 not fwmark 0x7120 lookup 7120",
				"-6 pref 7090 to 2001:db8:1::/64 not fwmark 0x7120 lookup 7120",
				"-6 pref 7100 lookup 254 suppress_prefixlength 0", "-6 pref 7110 not fwmark 0x7120 lookup 7120"},
			tables: []string{nftMarkTable},
			sysctl: []string{sysctlSrcValidMrk},
		},
		{
			name:   "IPv6 default given: nothing to block",
			cfg:    Config{Interface: "pt0", Routes: []netip.Prefix{mp("::/0")}, Exit: Exit{Active: true, AllowLAN: true, BlockIPv6: true}},
			routes: []string{"0.0.0.0/0 dev pt0 table 7120", "::/0 dev pt0 table 7120"},
			rules: []string{"-4 pref 7100 lookup 254 suppress_prefixlength 0", "-4 pref 7110 not fwmark 0x7120 lookup 7120",
				"-6 pref 7100 lookup 254 suppress_prefixlength 0", "-6 pref 7110 not fwmark 0x7120 lookup 7120"},
			tables: []string{nftMarkTable},
			sysctl: []string{sysctlSrcValidMrk},
		},
		{
			name:   "exit options without an active exit do nothing",
			cfg:    Config{Interface: "pt0", Exit: Exit{KillSwitch: true, BlockIPv6: true}},
			routes: nil, rules: nil, tables: nil, sysctl: nil,
		},
		{
			name:   "routing peer for both families",
			cfg:    Config{Interface: "pt0", Serve: []Serve{{Network: mp("10.9.0.0/16")}, {Network: mp("2001:db8:9::/48")}}},
			tables: []string{nftFwdTable},
			sysctl: []string{sysctlForward4, sysctlForward6},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := wantState(tc.cfg, lan, fwdGuard{})
			if got := routeStrings(d.routes); !slices.Equal(got, tc.routes) {
				t.Errorf("routes = %q, want %q", got, tc.routes)
			}
			if got := ruleStrings(wantRules(tc.cfg, d.routes, lan)); !slices.Equal(got, tc.rules) {
				t.Errorf("rules = %q, want %q", got, tc.rules)
			}
			var tables, sysctls []string
			for _, tb := range d.tables {
				tables = append(tables, tb.Name)
			}
			for _, s := range d.sysctls {
				sysctls = append(sysctls, s.Key)
			}
			if !slices.Equal(tables, tc.tables) || !slices.Equal(sysctls, tc.sysctl) {
				t.Errorf("tables = %q sysctls = %q, want %q %q", tables, sysctls, tc.tables, tc.sysctl)
			}
		})
	}
}

func TestRulesOnlyForInstalledFamilies(t *testing.T) {
	cfg := Config{Interface: "pt0", Routes: []netip.Prefix{mp("10.0.0.0/8"), mp("2001:db8::/32")}}
	// The IPv6 route was refused: no IPv6 rules.
	installed := []routeSpec{{Dst: mp("10.0.0.0/8"), Table: netx.Table, Dev: "pt0"}}
	for _, r := range wantRules(cfg, installed, hostLAN{}) {
		if r.V6 {
			t.Fatalf("IPv6 rule %s without an IPv6 route", r)
		}
	}
	if rs := wantRules(cfg, nil, hostLAN{}); len(rs) != 0 {
		t.Fatalf("rules without routes: %v", rs)
	}
}

func TestJournalDataRoundTrip(t *testing.T) {
	rules := []ruleSpec{
		{Pref: 7100, Table: 254, Suppress: 0},
		{V6: true, Pref: 7110, Table: 7120, Mark: 0x7120, Invert: true, Suppress: -1},
		{Pref: 7090, Table: 7120, Mark: 0x7120, Invert: true, Suppress: -1, Dst: mp("192.168.1.0/24")},
	}
	for _, r := range rules {
		got, err := ruleFromData(r.data())
		if err != nil || got != r {
			t.Errorf("rule %s: round trip = %+v, %v", r, got, err)
		}
	}
	routes := []routeSpec{
		{Dst: mp("0.0.0.0/0"), Table: 7120, Dev: "pt0"},
		{Dst: mp("::/0"), Table: 7120, Unreachable: true},
	}
	for _, r := range routes {
		got, err := routeFromData(r.data())
		if err != nil || got != r {
			t.Errorf("route %s: round trip = %+v, %v", r, got, err)
		}
	}
	for _, bad := range []map[string]string{{}, {"family": "5", "pref": "1", "table": "1"}, {"family": "4", "pref": "x", "table": "1"}} {
		if _, err := ruleFromData(bad); err == nil {
			t.Errorf("ruleFromData(%v) accepted", bad)
		}
	}
	if _, err := routeFromData(map[string]string{"dst": "10.0.0.0/8", "table": "7120", "type": "blackhole"}); err == nil {
		t.Error("routeFromData accepted an unknown type")
	}
}

func TestDiff(t *testing.T) {
	a := routeSpec{Dst: mp("10.0.0.0/8"), Table: 7120, Dev: "pt0"}
	b := routeSpec{Dst: mp("10.1.0.0/16"), Table: 7120, Dev: "pt0"}
	c := routeSpec{Dst: mp("10.2.0.0/16"), Table: 7120, Dev: "pt0"}
	add, del := diff([]routeSpec{a, b}, []routeSpec{b, c})
	if !slices.Equal(add, []routeSpec{c}) || !slices.Equal(del, []routeSpec{a}) {
		t.Fatalf("diff = add %v del %v", add, del)
	}
	add, del = diff([]routeSpec{a, b}, []routeSpec{b, a})
	if len(add)+len(del) != 0 {
		t.Fatalf("same set, different order: add %v del %v", add, del)
	}
}

func TestUndoGuards(t *testing.T) {
	for _, k := range []string{sysctlForward4, sysctlForward6, sysctlSrcValidMrk} {
		if !knownSysctl(k) {
			t.Errorf("knownSysctl(%q) = false", k)
		}
	}
	if knownSysctl("kernel.core_pattern") || knownTable("filter") {
		t.Error("guards accept foreign names")
	}
	if !strings.HasPrefix(sysctlPath(sysctlForward6), "/proc/sys/net/ipv6/conf/all/") {
		t.Errorf("sysctlPath = %s", sysctlPath(sysctlForward6))
	}
}
