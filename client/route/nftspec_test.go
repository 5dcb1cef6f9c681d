package route

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestForwardTable(t *testing.T) {
	got := forwardTable("pt0", []Serve{
		{Network: mp("10.9.0.0/16"), Masquerade: true, Sources: []netip.Prefix{mp("100.64.0.7/32"), mp("100.64.0.5/32"), mp("2001:db8::1/128")}},
		{Network: mp("0.0.0.0/0"), Sources: []netip.Prefix{mp("100.64.0.9/32")}},
		{Network: mp("10.8.0.0/16")}, // no sources: never forwarded
	}, fwdGuard{}).String()
	want := `table inet petrel-fwd {
	set src0 { type ip_addr; flags interval; elements = { 100.64.0.5/32, 100.64.0.7/32 } }
	set src1 { type ip_addr; flags interval; elements = { 100.64.0.9/32 } }
	chain fwd { type filter hook forward priority 0; policy accept;
		iifname "pt0" ct state established,related accept
		iifname "pt0" ip daddr 10.9.0.0/16 ip saddr @src0 accept
		iifname "pt0" meta nfproto ipv4 ip saddr @src1 accept
		iifname "pt0" drop
	}
	chain nat { type nat hook postrouting priority 100; policy accept;
		iifname "pt0" oifname != "pt0" ip daddr 10.9.0.0/16 masquerade
	}
}
`
	if got != want {
		t.Fatalf("forward table:\n%s\nwant:\n%s", got, want)
	}
}

func TestKillSwitchTable(t *testing.T) {
	lan := hostLAN{v4: []netip.Prefix{mp("192.168.1.0/24")}, v6: []netip.Prefix{mp("2001:db8:1::/64")}}
	withLAN := killSwitchTable("pt0", true, lan).String()
	noLAN := killSwitchTable("pt0", false, lan).String()
	for _, s := range []string{withLAN, noLAN} {
		for _, must := range []string{`meta mark 0x7120 accept`, `oifname "lo" accept`, `oifname "pt0" accept`, `ip6 daddr fe80::/10 accept`} {
			if !strings.Contains(s, must) {
				t.Errorf("kill switch lacks %q:\n%s", must, s)
			}
		}
		if !strings.HasSuffix(s, "\t\tdrop\n\t}\n}\n") {
			t.Errorf("kill switch does not end in drop:\n%s", s)
		}
	}
	for _, lanRule := range []string{"ip daddr 192.168.1.0/24 accept", "ip6 daddr 2001:db8:1::/64 accept"} {
		if !strings.Contains(withLAN, lanRule) {
			t.Errorf("AllowLAN kill switch lacks %q", lanRule)
		}
		if strings.Contains(noLAN, lanRule) {
			t.Errorf("kill switch without AllowLAN has %q", lanRule)
		}
	}
}

func TestMarkTable(t *testing.T) {
	s := markTable().String()
	for _, must := range []string{"hook prerouting", "ct mark 0x7120 meta mark set ct mark", "hook output", "meta mark 0x7120 ct mark set meta mark"} {
		if !strings.Contains(s, must) {
			t.Errorf("mark table lacks %q:\n%s", must, s)
		}
	}
}

func TestIntervals(t *testing.T) {
	merged := mergePrefixes([]netip.Prefix{mp("10.0.0.0/8"), mp("10.1.0.0/16"), mp("100.64.0.1/32"), mp("100.64.0.0/32")})
	if want := []netip.Prefix{mp("10.0.0.0/8"), mp("100.64.0.0/32"), mp("100.64.0.1/32")}; !slices.Equal(merged, want) {
		t.Fatalf("merge = %v, want %v", merged, want)
	}
	rs := intervalRanges(merged)
	a := netip.MustParseAddr
	want := [][2]netip.Addr{{a("10.0.0.0"), a("11.0.0.0")}, {a("100.64.0.0"), a("100.64.0.2")}}
	if !slices.Equal(rs, want) {
		t.Fatalf("ranges = %v, want %v (adjacent ranges must be joined)", rs, want)
	}
	top := intervalRanges([]netip.Prefix{mp("255.255.255.0/24")})
	if top[0][1].IsValid() {
		t.Fatalf("a range to the top has end %v, want none", top[0][1])
	}
}
