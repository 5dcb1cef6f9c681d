//go:build lab

package route

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func exitConfig(allowLAN bool) Config {
	return Config{
		Interface: "ptun0",
		Overlay:   mp("100.64.0.0/16"),
		Routes:    []netip.Prefix{mp("10.77.0.0/16")},
		Exit:      Exit{Active: true, AllowLAN: allowLAN, KillSwitch: true, BlockIPv6: true},
	}
}

func mustContain(t *testing.T, what, text string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(text, s) {
			t.Errorf("%s lacks %q:\n%s", what, s, text)
		}
	}
}

// TestLabApplyAndClose: (a) rules, routes, nft and sysctls as specified and
// the marked/unmarked lookups they give; idempotence; the no-LAN exit; an
// empty config and Close each restore the snapshots byte for byte; undoing
// the journal after Close is a no-op. Also HostNetworks.
func TestLabApplyAndClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := newLab(t)
	before := l.snapshot()
	m, j := l.manager()

	res, err := m.Apply(exitConfig(true))
	if err != nil || len(res.Failed) != 0 {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	for _, fam := range [][]string{{"rule"}, {"-6", "rule"}} {
		mustContain(t, "ip "+strings.Join(fam, " "), l.ip(fam...),
			"7100:\tfrom all lookup main suppress_prefixlength 0",
			"7110:\tnot from all fwmark 0x7120 lookup 7120")
	}
	mustContain(t, "table 7120", l.ip("route", "show", "table", "7120"), "default dev ptun0", "10.77.0.0/16 dev ptun0")
	mustContain(t, "ip -6 table 7120", l.ip("-6", "route", "show", "table", "7120"), "unreachable default")
	mustContain(t, "route get", l.routeGet("198.51.100.1"), "dev ptun0 table 7120")
	mustContain(t, "marked route get", l.routeGet("198.51.100.1", "mark", "0x7120"), "via 192.0.2.1 dev veth0")
	mustContain(t, "LAN route get", l.routeGet("192.0.2.55"), "dev veth0")
	if out := l.routeGet("2001:db8:99::1"); !strings.Contains(out, "No route to host") {
		t.Errorf("unmarked IPv6 not refused: %s", out)
	}
	mustContain(t, "marked IPv6 route get", l.routeGet("2001:db8:99::1", "mark", "0x7120"), "via 2001:db8:1::1 dev veth0")
	mustContain(t, "IPv6 LAN route get", l.routeGet("2001:db8:1::9"), "dev veth0")
	mustContain(t, "nft", l.nft(),
		"table inet petrel-exit", `oifname "ptun0" accept`, "meta mark 0x00007120 accept", "ip daddr 192.0.2.0/24 accept", "ip6 daddr 2001:db8:1::/64 accept", "drop",
		"table inet petrel-mark", "ct mark 0x00007120 meta mark set ct mark", "meta mark 0x00007120 ct mark set meta mark")
	if v := l.sysctl(sysctlSrcValidMrk); v != "1" {
		t.Errorf("src_valid_mark = %s, want 1", v)
	}

	// Idempotent: the same config changes nothing and journals nothing.
	applied, n := l.snapshot(), len(j.entries(t))
	handles, _ := l.exec("nft", "-a", "list", "ruleset") // a rewrite would renumber handles
	if _, err := m.Apply(exitConfig(true)); err != nil {
		t.Fatal(err)
	}
	l.requireSnapshot(applied, "second Apply")
	if again, _ := l.exec("nft", "-a", "list", "ruleset"); again != handles {
		t.Errorf("second Apply rewrote nftables tables:\n%s\nwas:\n%s", again, handles)
	}
	if got := len(j.entries(t)); got != n {
		t.Errorf("second Apply journaled %d more entries", got-n)
	}

	// No LAN: the LAN goes into the tunnel, marked sockets still reach it.
	if _, err := m.Apply(exitConfig(false)); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "ip rule", l.ip("rule"), "7090:\tnot from all to 192.0.2.0/24 fwmark 0x7120 lookup 7120")
	mustContain(t, "ip -6 rule", l.ip("-6", "rule"), "7090:\tnot from all to 2001:db8:1::/64 fwmark 0x7120 lookup 7120")
	mustContain(t, "LAN route get", l.routeGet("192.0.2.55"), "dev ptun0 table 7120")
	mustContain(t, "marked LAN route get", l.routeGet("192.0.2.55", "mark", "0x7120"), "dev veth0")
	if nft := l.nft(); strings.Contains(nft, "192.0.2.0/24 accept") {
		t.Errorf("kill switch without AllowLAN accepts the LAN:\n%s", nft)
	}

	// Nothing wanted: everything goes, byte for byte.
	if _, err := m.Apply(Config{Interface: "ptun0", Overlay: mp("100.64.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	l.requireSnapshot(before, "Apply of an empty config")

	var host Host
	l.inNS(func() { host, err = HostNetworks("ptun0") })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(host.Routes, mp("192.0.2.0/24")) || slices.Contains(host.Routes, mp("100.64.0.0/16")) {
		t.Errorf("HostNetworks routes = %v", host.Routes)
	}
	if !slices.Contains(host.Addrs, netip.MustParseAddr("192.0.2.2")) || slices.Contains(host.Addrs, netip.MustParseAddr("100.64.0.1")) {
		t.Errorf("HostNetworks addrs = %v", host.Addrs)
	}

	if _, err := m.Apply(exitConfig(true)); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	l.requireSnapshot(before, "Close")
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.Apply(exitConfig(true)); err == nil {
		t.Fatal("Apply after Close succeeded")
	}
	l.undoJournal(j)
	l.requireSnapshot(before, "undoing the journal after Close")
}

// TestLabCrashUndo: (c) a Manager abandoned without Close (kill -9) is
// undone by Undoers over its journal alone; running them again (the state
// of a crash right after Record, before the change) is a no-op.
func TestLabCrashUndo(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := newLab(t)
	before := l.snapshot()
	m, j := l.manager()
	cfg := exitConfig(false)
	cfg.Serve = []Serve{{Network: mp("192.0.2.0/24"), Masquerade: true, Sources: []netip.Prefix{mp("100.64.0.7/32")}}}
	if _, err := m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, e := range j.entries(t) {
		kinds[e.Kind] = true
	}
	for _, k := range []string{KindRoute, KindRule, KindSysctl, KindNftTable} {
		if !kinds[k] {
			t.Errorf("journal has no %q entry", k)
		}
	}
	m.abandon()
	if l.ip("rule") == before["ip rule"] {
		t.Fatal("nothing installed before the simulated crash")
	}
	l.undoJournal(j)
	l.requireSnapshot(before, "undo after crash")
	l.undoJournal(j)
	l.requireSnapshot(before, "second undo")
}

// TestLabDrift: (d) a rule, a table route and an nft table deleted from
// outside come back and are counted.
func TestLabDrift(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := newLab(t)
	before := l.snapshot()
	m, _ := l.manager()
	if _, err := m.Apply(exitConfig(true)); err != nil {
		t.Fatal(err)
	}
	applied := l.snapshot()
	l.ip("rule", "del", "pref", "7110")
	l.ip("route", "del", "10.77.0.0/16", "table", "7120")
	if out, err := l.exec("nft", "delete", "table", "inet", "petrel-exit"); err != nil {
		t.Fatalf("nft delete: %v %s", err, out)
	}
	eventually(t, "drift repair", func() bool { return m.Repairs() >= 3 })
	l.requireSnapshot(applied, "after drift repair")
	// A route changed to another device is also put back.
	l.ip("route", "replace", "10.77.0.0/16", "dev", "veth0", "table", "7120")
	eventually(t, "route on the wrong device repaired", func() bool {
		return strings.Contains(l.ip("route", "show", "table", "7120"), "10.77.0.0/16 dev ptun0")
	})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	l.requireSnapshot(before, "Close")
}

// TestLabRefusedRoute: (e) a route the kernel refuses (IPv6 on a TUN with
// IPv6 disabled) is reported, the rest installed, no IPv6 rules added.
func TestLabRefusedRoute(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := newLab(t)
	if out, err := l.exec("sysctl", "-w", "net.ipv6.conf.ptun0.disable_ipv6=1"); err != nil {
		t.Fatalf("disable IPv6: %v %s", err, out)
	}
	before := l.snapshot()
	m, j := l.manager()
	v6 := mp("2001:db8:77::/48")
	res, err := m.Apply(Config{Interface: "ptun0", Overlay: mp("100.64.0.0/16"), Routes: []netip.Prefix{mp("10.77.0.0/16"), v6, mp("10.78.0.0/16")}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(res.Failed) != 1 || res.Failed[v6] == nil {
		t.Fatalf("Failed = %v, want only %s", res.Failed, v6)
	}
	t.Logf("kernel refused %s: %v", v6, res.Failed[v6])
	mustContain(t, "table 7120", l.ip("route", "show", "table", "7120"), "10.77.0.0/16 dev ptun0", "10.78.0.0/16 dev ptun0")
	if r6 := l.ip("-6", "rule"); strings.Contains(r6, "7110") {
		t.Errorf("IPv6 rules without an IPv6 route:\n%s", r6)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	l.requireSnapshot(before, "Close")
	l.undoJournal(j) // includes the journaled, refused route
	l.requireSnapshot(before, "undo after Close")
}

// TestLabServe: (f) a routing peer turns forwarding on, installs the
// forward/NAT table, replaces it on change, and restores all on Close.
func TestLabServe(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := newLab(t)
	before := l.snapshot()
	if before["sysctl "+sysctlForward4] != "0" {
		t.Fatalf("a new namespace has ip_forward=%s", before["sysctl "+sysctlForward4])
	}
	m, _ := l.manager()
	cfg := Config{Interface: "ptun0", Overlay: mp("100.64.0.0/16"), Serve: []Serve{
		{Network: mp("192.0.2.0/24"), Masquerade: true, Sources: []netip.Prefix{mp("100.64.0.7/32"), mp("100.64.0.9/32")}},
		{Network: mp("0.0.0.0/0"), Sources: []netip.Prefix{mp("100.64.0.8/32")}},
	}}
	if _, err := m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if v := l.sysctl(sysctlForward4); v != "1" {
		t.Errorf("ip_forward = %s, want 1", v)
	}
	if v := l.sysctl(sysctlForward6); v != "0" {
		t.Errorf("IPv6 forwarding = %s for IPv4 networks only", v)
	}
	mustContain(t, "nft", l.nft(), "table inet petrel-fwd",
		"elements = { 100.64.0.7, 100.64.0.9 }", "elements = { 100.64.0.8 }",
		`iifname "ptun0" ct state established,related accept`,
		`iifname "ptun0" ip daddr 192.0.2.0/24 ip saddr @src0 accept`,
		`iifname "ptun0" meta nfproto ipv4 ip saddr @src1 accept`,
		`iifname "ptun0" drop`,
		`iifname "ptun0" oifname != "ptun0" ip daddr 192.0.2.0/24 masquerade`)

	cfg.Serve[0].Sources = []netip.Prefix{mp("100.64.0.10/32")}
	if _, err := m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	nft := l.nft()
	mustContain(t, "nft after a source change", nft, "elements = { 100.64.0.10 }")
	if strings.Count(nft, "table inet petrel-fwd") != 1 || strings.Contains(nft, "100.64.0.7") {
		t.Errorf("table not replaced:\n%s", nft)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	l.requireSnapshot(before, "Close")
}

// TestLabNetstackTouchesNothing: an empty Interface never touches the host.
func TestLabNetstackTouchesNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := newLab(t)
	before := l.snapshot()
	m, j := l.manager()
	cfg := exitConfig(true)
	cfg.Interface = ""
	if _, err := m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	l.requireSnapshot(before, "netstack Apply")
	if n := len(j.entries(t)); n != 0 {
		t.Errorf("netstack Apply journaled %d entries", n)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLabInterfaceChange: routes move to a new interface name without the
// removal of the old ones deleting the new (the old device is gone).
func TestLabInterfaceChange(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := newLab(t)
	l.ip("tuntap", "add", "dev", "ptun1", "mode", "tun")
	l.ip("link", "set", "ptun1", "up")
	before := l.snapshot()
	m, j := l.manager()
	cfg := Config{Interface: "ptun1", Routes: []netip.Prefix{mp("10.77.0.0/16")}}
	if _, err := m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	l.ip("link", "del", "ptun1")
	cfg.Interface = "ptun0"
	if _, err := m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "table 7120", l.ip("route", "show", "table", "7120"), "10.77.0.0/16 dev ptun0")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	delete(before, "ip route show table all") // ptun1 is gone
	delete(before, "ip -6 route show table all")
	l.requireSnapshot(before, "Close")
	if out := l.ip("route", "show", "table", "7120"); out != "" {
		t.Errorf("table 7120 after Close: %s", out)
	}
	l.undoJournal(j)
}

// TestLabFamilyRulesFollowRoutes: removing the last IPv6 route removes the
// IPv6 rules while the IPv4 ones stay.
func TestLabFamilyRulesFollowRoutes(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := newLab(t)
	before := l.snapshot()
	m, _ := l.manager()
	cfg := Config{Interface: "ptun0", Routes: []netip.Prefix{mp("10.77.0.0/16"), mp("2001:db8:77::/48")}}
	if _, err := m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "ip -6 rule", l.ip("-6", "rule"), "7110:\tnot from all fwmark 0x7120 lookup 7120")
	cfg.Routes = cfg.Routes[:1]
	if _, err := m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if r6 := l.ip("-6", "rule"); r6 != before["ip -6 rule"] {
		t.Errorf("IPv6 rules after the last IPv6 route went:\n%s", r6)
	}
	mustContain(t, "ip rule", l.ip("rule"), "7110:\tnot from all fwmark 0x7120 lookup 7120")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	l.requireSnapshot(before, "Close")
}

// abandon simulates a crash (tests only): it stops the drift goroutine and
// drops the handles without undoing anything.
func (m *Manager) abandon() {
	m.mu.Lock()
	wait := m.closeLocked()
	if m.plat != nil {
		m.plat.nl.close()
		m.plat = nil
	}
	m.mu.Unlock()
	wait()
}
