//go:build lab

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"petrel/lab"
)

// Agent DNS (docs/dns.md) with real processes in TUN mode (netstack in
// TestDNSNetstackSOCKS): ordinary programs resolve peer names, custom
// zones and the internet through the agent's resolver; resolv.conf is
// restored byte for byte however the agent ends; match-domain nameserver
// groups are reached through the overlay; and the management-domain cache
// keeps the control plane resolvable behind a frozen exit node.

const peerDomain = "petrel.internal"

// origResolvConf is what a's resolv.conf holds before the agent starts: a
// comment, a search list and options, so "restored" means byte for byte
// and not "some file naming the lab DNS".
var origResolvConf = []byte("# petrel e2e: the host's own resolv.conf\nnameserver " + lab.DNSAddr.String() +
	"\nsearch lab.test\noptions timeout:2 attempts:2\n")

// waitResolvOurs waits until a's resolv.conf names a's resolver (ip) and
// returns its content.
func waitResolvOurs(t *testing.T, a *Agent, ip string) []byte {
	t.Helper()
	var got []byte
	if err := Poll(context.Background(), 30*time.Second, 100*time.Millisecond, func() bool {
		got, _ = ReadResolvConf(a.Host)
		return bytes.Contains(got, []byte("nameserver "+ip+"\n"))
	}); err != nil {
		t.Fatalf("%s's resolv.conf does not name its resolver %s: %v\n%s\n%s", a.Name, ip, err, got, tail(a.Proc.Output(), 3000))
	}
	return got
}

// expectRestored checks a's resolv.conf is origResolvConf byte for byte.
func expectRestored(t *testing.T, a *Agent, when string) {
	t.Helper()
	got, err := ReadResolvConf(a.Host)
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	if !bytes.Equal(got, origResolvConf) {
		t.Fatalf("%s: resolv.conf not restored byte for byte:\ngot  %q\nwant %q", when, got, origResolvConf)
	}
	t.Logf("%s: resolv.conf restored byte for byte", when)
}

// pollValue polls f every 250 ms for up to timeout until it returns ok; the
// error carries the last value and error.
func pollValue[T any](t *testing.T, timeout time.Duration, what string, f func() (T, error), ok func(T) bool) (T, time.Duration) {
	t.Helper()
	var last T
	var lastErr error
	start := time.Now()
	if err := Poll(context.Background(), timeout, 250*time.Millisecond, func() bool {
		last, lastErr = f()
		return lastErr == nil && ok(last)
	}); err != nil {
		t.Fatalf("%s: %v; last %v (err %v)", what, err, last, lastErr)
	}
	return last, time.Since(start)
}

func oneLine(want string) func([]string) bool {
	return func(l []string) bool { return len(l) == 1 && l[0] == want }
}

func is(want string) func(string) bool { return func(s string) bool { return s == want } }

// dnsPair starts agents a and b (EIM); a's resolv.conf is origResolvConf.
// aArgs are extra flags for a.
func dnsPair(t *testing.T, aArgs ...string) (c *Cluster, a, b *Agent, aIP, bIP string) {
	t.Helper()
	ctx := context.Background()
	c = newCluster(t)
	ags := agentHosts(t, c, "a", "b")
	a, b = ags[0], ags[1]
	a.Args = append(a.Args, aArgs...)
	if err := os.WriteFile(ResolvConf(a.Host), origResolvConf, 0o644); err != nil {
		t.Fatal(err)
	}
	startAgents(t, a, b)
	sa, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c, a, b, sa.OverlayIP(), sb.OverlayIP()
}

// TestDNSOrdinaryPrograms: on a, libc (getent) and dig resolve b's peer
// name, the short name (search domain), a custom zone added through REST
// while the agents run, and names outside the overlay (the lab DNS, via
// the original nameserver); curl reaches an HTTP server on b's overlay
// address by name. a's resolv.conf names a's resolver while up and is
// restored byte for byte after `petrel down`, after SIGKILL + `petrel
// debug cleanup`, and after SIGKILL + the next start + SIGTERM.
func TestDNSOrdinaryPrograms(t *testing.T) {
	ctx := context.Background()
	c, a, b, aIP, bIP := dnsPair(t)
	recs := c.CP.DNS.Records
	wwwAddr := "203.0.113.80"
	recs.Set("www.lab.test", netip.MustParseAddr(wwwAddr))
	bName := "b." + peerDomain

	ours := waitResolvOurs(t, a, aIP)
	t.Logf("a's resolv.conf while up:\n%s", ours)
	if bytes.Contains(ours, []byte("nameserver "+lab.DNSAddr.String())) {
		t.Errorf("a's resolv.conf still names the original nameserver (queries would bypass the agent):\n%s", ours)
	}
	sd, err := a.StatusDNS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sd == nil || sd.HostMode != "file" || strings.TrimSuffix(sd.Domain, ".") != peerDomain || !slices.Contains(sd.Listeners, aIP+":53") || !sd.Bypass || sd.Error != "" {
		t.Fatalf("status dns: %+v; want host_mode file, domain %s, listener %s:53, bypass, no error", sd, peerDomain, aIP)
	}

	// Peer names: libc and dig, full and short names.
	pollValue(t, 30*time.Second, "getent hosts "+bName, func() (string, error) { return Getent(ctx, a.Host, bName) }, is(bIP))
	pollValue(t, 10*time.Second, "dig "+bName, func() ([]string, error) { return Dig(ctx, a.Host, bName) }, oneLine(bIP))
	pollValue(t, 10*time.Second, "getent hosts b (search domain)", func() (string, error) { return Getent(ctx, a.Host, "b") }, is(bIP))
	ans, err := a.DNSQuery(ctx, bName)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Handler != "local-zone" || !ans.Authoritative || !ans.Has(bIP) {
		t.Errorf("petrel dns query %s: %s; want local-zone, authoritative, %s", bName, ans, bIP)
	}

	// Outside the overlay: a name only the original nameserver knows, and
	// the management name (answered from the cache).
	pollValue(t, 10*time.Second, "dig www.lab.test", func() ([]string, error) { return Dig(ctx, a.Host, "www.lab.test") }, oneLine(wwwAddr))
	if ans, err := a.DNSQuery(ctx, "www.lab.test"); err != nil {
		t.Fatal(err)
	} else if ans.Handler != "original" || !ans.Has(wwwAddr) {
		t.Errorf("petrel dns query www.lab.test: %s; want handler original", ans)
	}
	if q := recs.Queries("www.lab.test"); len(q) == 0 || q[0].From.Addr() != a.Host.PublicAddr {
		t.Errorf("lab DNS log for www.lab.test: %+v; want queries from a's public address %s", q, a.Host.PublicAddr)
	}
	pollValue(t, 10*time.Second, "getent hosts "+lab.MgmtName, func() (string, error) { return Getent(ctx, a.Host, lab.MgmtName) },
		is(lab.ServerAddr.String()))

	// A custom zone created through REST while the agents run.
	const zoneName, zoneAddr = "wiki.apps.example", "10.9.8.7"
	if got, _ := Dig(ctx, a.Host, zoneName); len(got) != 0 {
		t.Fatalf("%s resolves before its zone exists: %v", zoneName, got)
	}
	if err := c.API(ctx, "POST", "/api/dns/zones", map[string]any{"domain": "apps.example",
		"records": []map[string]any{{"name": "wiki", "type": "A", "value": zoneAddr, "ttl": 60}}}, nil); err != nil {
		t.Fatal(err)
	}
	_, took := pollValue(t, 30*time.Second, "dig "+zoneName+" after POST /api/dns/zones",
		func() ([]string, error) { return Dig(ctx, a.Host, zoneName) }, oneLine(zoneAddr))
	t.Logf("custom zone record resolves on a %v after the REST call", took.Round(time.Millisecond))
	if got, err := Getent(ctx, a.Host, zoneName); err != nil || got != zoneAddr {
		t.Errorf("getent hosts %s: %q %v", zoneName, got, err)
	}

	// curl by name to an HTTP server on b's overlay address.
	token := fmt.Sprintf("petrel-dns-%d", time.Now().UnixNano())
	stop, err := ServeHTTP(b.Host, bIP+":8081", token)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	url := "http://" + bName + ":8081/"
	pollValue(t, 30*time.Second, "curl "+url, func() (string, error) {
		return a.Host.Run(ctx, "curl", "-sS", "--max-time", "5", url)
	}, is(token))

	// 1. petrel down (stops the foreground daemon too).
	if _, err := a.CLI(ctx, "down"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Proc.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("agent a still runs 30 s after `petrel down`")
	}
	expectRestored(t, a, "after petrel down")

	// 2. SIGKILL, then `petrel debug cleanup` inside a's namespace (the
	// journal names /etc/resolv.conf, which only the namespace maps to
	// a's file).
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	waitResolvOurs(t, a, aIP)
	if err := a.Kill(); err != nil {
		t.Fatal(err)
	}
	if got, _ := ReadResolvConf(a.Host); bytes.Equal(got, origResolvConf) {
		t.Fatal("resolv.conf already original right after SIGKILL: the cleanup check below would prove nothing")
	}
	out, err := a.Host.Run(ctx, a.Bins.Petrel, "debug", "cleanup", "--state-dir", a.StateDir)
	if err != nil {
		t.Fatalf("petrel debug cleanup: %v", err)
	}
	t.Logf("petrel debug cleanup: %s", strings.TrimSpace(out))
	expectRestored(t, a, "after SIGKILL + petrel debug cleanup")

	// 3. SIGKILL, then the next start (which replays the journal and
	// backs up the original again, not our file), then SIGTERM.
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	waitResolvOurs(t, a, aIP)
	if err := a.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WaitStatus(ctx, 60*time.Second, "connected after restart", func(s *Status) bool { return s.State == "connected" }); err != nil {
		t.Fatal(err)
	}
	waitResolvOurs(t, a, aIP)
	if d, err := a.DNSDetails(ctx); err != nil {
		t.Fatal(err)
	} else if d.Host == nil || d.Host.Backup == "" {
		t.Errorf("dns status shows no backup: %+v", d.Host)
	} else if bk, err := os.ReadFile(d.Host.Backup); err != nil || !bytes.Equal(bk, origResolvConf) {
		t.Errorf("after SIGKILL + restart the backup %s holds %q (err %v), want the original", d.Host.Backup, bk, err)
	}
	if err := a.Stop(); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	expectRestored(t, a, "after SIGKILL + restart + SIGTERM")
}

// TestDNSMatchDomainGroupThroughOverlay: a DNS server for corp.example
// listens only on b's overlay address; a nameserver group for corp.example
// makes a's resolver ask it through the tunnel. Before the group exists
// the name does not resolve on a.
func TestDNSMatchDomainGroupThroughOverlay(t *testing.T) {
	ctx := context.Background()
	c, a, b, aIP, bIP := dnsPair(t)
	const name, addr = "host.corp.example", "10.55.0.7"
	corp := lab.NewRecords()
	corp.Set(name, netip.MustParseAddr(addr))
	stop, err := ServeDNSRecords(b.Host, netip.MustParseAddrPort(bIP+":5353"), corp)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	waitResolvOurs(t, a, aIP)
	if got, _ := Dig(ctx, a.Host, name); len(got) != 0 {
		t.Fatalf("%s resolves on a before the nameserver group exists: %v", name, got)
	}
	var grp struct {
		ID string `json:"id"`
	}
	if err := c.API(ctx, "POST", "/api/dns/nameservers", map[string]any{"name": "corp",
		"nameservers": []string{bIP + ":5353"}, "domains": []string{"corp.example"},
		"primary": false, "groups": []string{"All"}}, &grp); err != nil {
		t.Fatal(err)
	}
	if grp.ID == "" {
		t.Fatal("POST /api/dns/nameservers returned no id")
	}
	_, took := pollValue(t, 30*time.Second, "dig "+name+" through the group",
		func() ([]string, error) { return Dig(ctx, a.Host, name) }, oneLine(addr))
	t.Logf("%s resolves on a %v after the REST call", name, took.Round(time.Millisecond))
	ans, err := a.DNSQuery(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Handler != "group:"+grp.ID || !ans.Has(addr) || strings.TrimSuffix(ans.Domain, ".") != "corp.example" {
		t.Errorf("petrel dns query %s: %s (domain %q); want handler group:%s, domain corp.example", name, ans, ans.Domain, grp.ID)
	}
	q := corp.Queries(name)
	if len(q) == 0 {
		t.Fatal("b's corp DNS server logged no query")
	}
	for _, e := range q {
		if e.From.Addr().String() != aIP {
			t.Errorf("corp DNS query from %s, want a's overlay address %s (through the tunnel)", e.From, aIP)
		}
	}
	t.Logf("b's corp server saw %d queries, all from %s", len(q), aIP)
}

// frozenExit is the TestDNSControlPlaneBehindFrozenExit / TestDNSNoBypassDeadlocks
// rig: the exit-node lab, e frozen and then selected on a, eu-9 (a relay
// instance name a never saw) added to the lab DNS.
type frozenExit struct {
	*exitLab
	recs *lab.Records
	aIP  string
}

const (
	eu9Name = "eu-9." + lab.RelayPoolName
	eu9Addr = "203.0.113.29"
)

func newFrozenExit(t *testing.T, bypass bool, aArgs ...string) *frozenExit {
	t.Helper()
	ctx := context.Background()
	x := &frozenExit{exitLab: newExitLab(t, false, aArgs...)}
	x.recs = x.c.CP.DNS.Records
	st, err := x.a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	x.aIP = st.OverlayIP()
	rc := waitResolvOurs(t, x.a, x.aIP)
	if bytes.Contains(rc, []byte("nameserver "+lab.DNSAddr.String())) {
		t.Fatalf("a's resolv.conf should name only a's resolver:\n%s", rc)
	}
	sd, err := x.a.StatusDNS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sd == nil || sd.Bypass != bypass {
		t.Fatalf("status dns %+v: want bypass %v", sd, bypass)
	}
	// The cache holds the management name before the freeze.
	d, _ := pollValue(t, 15*time.Second, "mgmt.lab.test in the cache", func() (*DNSDetails, error) { return x.a.DNSDetails(ctx) },
		func(d *DNSDetails) bool { e := d.CacheEntry(lab.MgmtName, "A"); return e != nil && len(e.Addrs) > 0 })
	e := d.CacheEntry(lab.MgmtName, "A")
	t.Logf("cache before the freeze: %s A %v source %q; pool roots %v", e.Name, e.Addrs, e.Source, d.Resolver.PoolRoots)
	if bypass && !strings.Contains(e.Source, "bypass") {
		t.Errorf("mgmt.lab.test cached from %q, want the bypass", e.Source)
	}
	if !slices.Contains(d.Resolver.PoolRoots, lab.RelayPoolName+".") {
		t.Fatalf("pool roots %v lack %s", d.Resolver.PoolRoots, lab.RelayPoolName)
	}
	x.recs.Set(eu9Name, netip.MustParseAddr(eu9Addr))

	if err := x.e.Proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	x.use(t, "use", "e")
	if tbl := x.table7120(t); !strings.Contains(tbl, "default dev "+Iface) {
		t.Fatalf("exit node selected but a's table 7120 has no default dev %s:\n%s", Iface, tbl)
	}
	// An unmarked query to the lab DNS now goes into the tunnel and nowhere.
	if got, err := Dig(ctx, x.a.Host, "@"+lab.DNSAddr.String(), eu9Name); err == nil || len(got) != 0 {
		t.Fatalf("a reached the lab DNS directly with the frozen exit node selected: %v %v", got, err)
	}
	if q := x.recs.Queries(eu9Name); len(q) != 0 {
		t.Fatalf("the lab DNS saw %s although a's direct query should be swallowed: %+v", eu9Name, q)
	}
	return x
}

// controlPlaneUp fails the test unless a's management, signal and relay
// are connected.
func (x *frozenExit) controlPlaneUp(t *testing.T, since time.Time) {
	t.Helper()
	s, err := x.a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !s.Management.Connected || !s.Signal.Connected || !s.Relay.Connected {
		t.Fatalf("%v into the freeze a lost its control plane: management %v signal %v relay %v (%s)",
			time.Since(since).Round(time.Second), s.Management.Connected, s.Signal.Connected, s.Relay.Connected, s.LastError)
	}
}

// cacheTTLFlag is the hidden `petrel up` knob that shortens the
// management-domain cache TTL (tests only); the refresh check runs when
// the agent has it.
const cacheTTLFlag = "--debug-dns-cache-ttl"

var mgmt2Addr = netip.MustParseAddr("203.0.113.11")

// hasUpFlag reports whether `petrel up` accepts flag (hidden flags too):
// cobra rejects an unknown flag even with --help.
func hasUpFlag(ctx context.Context, flag string) bool {
	return exec.CommandContext(ctx, bins.Petrel, "up", flag, "--help").Run() == nil
}

var bypassHow = regexp.MustCompile(`bypass ` + regexp.QuoteMeta(lab.DNSAddr.String()) + `:53`)

// TestDNSControlPlaneBehindFrozenExit: e is frozen, then selected as a's
// exit node (the overlay default route is in place, e's session is not
// live). For 30 s, checked each second: a's management, signal and relay
// stay connected; a resolves mgmt.lab.test from its management-domain
// cache (CLI and dig); and eu-9.relay.lab.test, a relay instance name
// under the pool root that a never saw, resolves on demand through the
// bypass: the lab DNS sees the query from a's own public address (the
// underlay), while a plain query to the same server from a goes into the
// tunnel and is lost. When the agent has the cache-TTL knob
// (cacheTTLFlag), mgmt.lab.test gains a second address in the lab DNS and
// the stale entry must be refreshed through the bypass while frozen.
// After SIGCONT a's traffic leaves through e.
// TestDNSNoBypassDeadlocks is the same scenario without the bypass.
func TestDNSControlPlaneBehindFrozenExit(t *testing.T) {
	ctx := context.Background()
	// (b) A refresh through the bypass needs a stale entry; the cache TTL
	// is 5 min unless the agent has the (hidden) knob to shorten it.
	var args []string
	refresh := hasUpFlag(ctx, cacheTTLFlag+"=3s")
	if refresh {
		args = append(args, cacheTTLFlag, "3s")
	} else {
		t.Logf("refresh through the bypass not checked: `petrel up` has no %s knob (cache TTL fixed at 5 min)", cacheTTLFlag)
	}
	x := newFrozenExit(t, true, args...)
	start := time.Now()
	var eu9 *DNSAnswer
	var eu9After time.Duration
	var last *DNSAnswer
	refreshed := time.Duration(-1)
	var lastMgmt *DNSCacheEntry
	if refresh {
		x.recs.Set(lab.MgmtName, lab.ServerAddr, mgmt2Addr)
	}
	for i := 1; time.Since(start) < 30*time.Second; i++ {
		if refresh && refreshed < 0 {
			d, err := x.a.DNSDetails(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if lastMgmt = d.CacheEntry(lab.MgmtName, "A"); lastMgmt != nil && slices.Contains(lastMgmt.Addrs, mgmt2Addr.String()) &&
				strings.Contains(lastMgmt.Source, "bypass") {
				refreshed = time.Since(start)
			}
		}
		x.controlPlaneUp(t, start)
		ans, err := x.a.DNSQuery(ctx, lab.MgmtName)
		if err != nil {
			t.Fatal(err)
		}
		if ans.Handler != "mgmt-cache" || ans.Rcode != "NOERROR" || !ans.Has(lab.ServerAddr.String()) {
			t.Fatalf("%v into the freeze: petrel dns query %s: %s", time.Since(start).Round(time.Second), lab.MgmtName, ans)
		}
		if eu9 == nil {
			if last, err = x.a.DNSQuery(ctx, eu9Name); err != nil {
				t.Fatal(err)
			}
			if last.Handler == "mgmt-cache" && last.Has(eu9Addr) {
				eu9, eu9After = last, time.Since(start)
			}
		}
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second)))
	}
	if eu9 == nil {
		t.Fatalf("%s never resolved from the cache while the exit node was frozen; last answer %s\n%s", eu9Name, last, tail(x.a.Proc.Output(), 3000))
	}
	t.Logf("frozen 30 s: control plane connected every second; %s: %s (%v into the freeze)", eu9Name, eu9, eu9After.Round(time.Millisecond))
	if refresh {
		if refreshed < 0 {
			t.Errorf("the stale cache entry for %s was not refreshed through the bypass while frozen; last %+v", lab.MgmtName, lastMgmt)
		} else {
			t.Logf("%s refreshed through the bypass %v into the freeze: %+v", lab.MgmtName, refreshed.Round(time.Millisecond), *lastMgmt)
		}
	}
	if !bypassHow.MatchString(eu9.How) || !strings.Contains(eu9.How, "on demand") {
		t.Errorf("%s answered %q, want an on-demand lookup through the bypass %s:53", eu9Name, eu9.How, lab.DNSAddr)
	}
	q := x.recs.Queries(eu9Name)
	if len(q) == 0 {
		t.Error("the lab DNS logged no query for " + eu9Name)
	}
	for _, e := range q {
		if e.From.Addr() != x.a.Host.PublicAddr {
			t.Errorf("lab DNS saw %s from %s, want a's public (underlay) address %s", eu9Name, e.From, x.a.Host.PublicAddr)
		}
	}
	// Ordinary programs get the same answers from a's resolver.
	for name, want := range map[string]string{lab.MgmtName: lab.ServerAddr.String(), eu9Name: eu9Addr} {
		if got, err := Dig(ctx, x.a.Host, name); err != nil || !slices.Contains(got, want) {
			t.Errorf("dig %s on a with the frozen exit node: %v %v; want %s", name, got, err, want)
		}
	}
	if d, err := x.a.DNSDetails(ctx); err != nil {
		t.Fatal(err)
	} else if e := d.CacheEntry(eu9Name, "A"); e == nil || !e.OnDemand || !strings.Contains(e.Source, "bypass") {
		t.Errorf("cache entry for %s: %+v; want on demand, from the bypass", eu9Name, e)
	}

	if err := x.e.Proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	x.expectSource(t, x.e.Host.PublicAddr, "exit node resumed")
	t.Logf("a's traffic leaves through e %v after SIGCONT", time.Since(resumed).Round(time.Millisecond))
}

// TestDNSNoBypassDeadlocks: the scenario of TestDNSControlPlaneBehindFrozenExit
// with the bypass resolver disabled (--debug-dns-no-bypass). The on-demand
// relay instance name must not resolve while the frozen exit node's default
// route swallows the lookups: so the bypass is what makes it work there.
func TestDNSNoBypassDeadlocks(t *testing.T) {
	ctx := context.Background()
	x := newFrozenExit(t, false, "--debug-dns-no-bypass")
	start := time.Now()
	var answers []string
	for i := 1; time.Since(start) < 12*time.Second; i++ {
		x.controlPlaneUp(t, start)
		ans, err := x.a.DNSQuery(ctx, eu9Name)
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, ans.String())
		if ans.Has(eu9Addr) {
			t.Fatalf("without the bypass %s still resolved %v into the freeze: %s\n"+
				"lab DNS saw it from %+v (a's public address is %s): the lookup left a outside the tunnel anyway, "+
				"so this test cannot show that the bypass is what makes it work",
				eu9Name, time.Since(start).Round(time.Second), ans, x.recs.Queries(eu9Name), x.a.Host.PublicAddr)
		}
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second)))
	}
	t.Logf("without the bypass %s did not resolve in 12 s; answers: %v", eu9Name, answers)
	if q := x.recs.Queries(eu9Name); len(q) != 0 {
		t.Errorf("the lab DNS saw %s although nothing should reach it: %+v", eu9Name, q)
	}
	if err := x.e.Proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	x.expectSource(t, x.e.Host.PublicAddr, "exit node resumed")
}

var socksLine = regexp.MustCompile(`(?m)^SOCKS5:\s+(\S+)`)

// TestDNSNetstackSOCKS: a runs in netstack mode (no TUN, resolv.conf left
// alone); curl on a's host reaches an HTTP server on b's overlay address
// by peer name through the SOCKS5 proxy, which resolves the name with
// a's resolver. With local name resolution (--socks5) the same URL fails.
func TestDNSNetstackSOCKS(t *testing.T) {
	ctx := context.Background()
	_, a, b, _, bIP := dnsPair(t, "--netstack", "--socks5", "127.0.0.1:1080")
	if ok, err := a.HasIface(ctx); err != nil || ok {
		t.Fatalf("netstack agent a has %s (err %v)", Iface, err)
	}
	out, err := a.CLI(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	m := socksLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("petrel status shows no SOCKS5 address:\n%s", out)
	}
	socks := m[1]
	sd, err := a.StatusDNS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sd == nil || len(sd.Listeners) != 1 || !strings.HasPrefix(sd.Listeners[0], "127.0.0.1:") || sd.HostMode != "off" {
		t.Fatalf("status dns of the netstack agent: %+v; want one 127.0.0.1 listener, host_mode off", sd)
	}
	if rc, _ := ReadResolvConf(a.Host); !bytes.Equal(rc, origResolvConf) {
		t.Errorf("netstack mode changed a's resolv.conf: %q", rc)
	}
	t.Logf("a: SOCKS5 %s, resolver %s", socks, sd.Listeners[0])
	res := netip.MustParseAddrPort(sd.Listeners[0])
	bName := "b." + peerDomain
	pollValue(t, 30*time.Second, "dig "+bName+" at a's loopback resolver", func() ([]string, error) {
		return Dig(ctx, a.Host, "@"+res.Addr().String(), "-p", fmt.Sprint(res.Port()), bName)
	}, oneLine(bIP))

	token := fmt.Sprintf("petrel-socks-%d", time.Now().UnixNano())
	stop, err := ServeHTTP(b.Host, bIP+":8081", token)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	url := "http://" + bName + ":8081/"
	pollValue(t, 30*time.Second, "curl --socks5-hostname "+url, func() (string, error) {
		return a.Host.Run(ctx, "curl", "-sS", "--max-time", "5", "--socks5-hostname", socks, url)
	}, is(token))
	if out, err := a.Host.Run(ctx, "curl", "-sS", "--max-time", "5", "--socks5", socks, url); err == nil {
		t.Errorf("curl --socks5 (local resolution of %s) succeeded: %q", bName, out)
	}
}

// TestDNSExitNodeNoLeak: with an exit node in use, the queries a's
// resolver forwards for ordinary programs (names outside the overlay, the
// original nameserver) leave through the exit node like the rest of a's
// internet traffic: the lab DNS sees them from e's public address. Without
// the exit node it sees a's own public address (so the check can fail).
// With the kill switch on and the exit node frozen no query reaches it.
// Only the management-domain cache's bypass may use the underlay
// (docs/architecture.md: control-plane sockets include the DNS bypass resolver,
// not the forwarding of other programs' queries).
func TestDNSExitNodeNoLeak(t *testing.T) {
	ctx := context.Background()
	x := newExitLab(t, false)
	recs := x.c.CP.DNS.Records
	froms := func(name string) []netip.Addr {
		var out []netip.Addr
		for _, q := range recs.Queries(name) {
			out = append(out, q.From.Addr())
		}
		return out
	}
	resolve := func(name string) {
		t.Helper()
		recs.Set(name, webAddr)
		pollValue(t, 20*time.Second, "dig "+name, func() ([]string, error) { return Dig(ctx, x.a.Host, name) }, oneLine(webAddr.String()))
		if ans, err := x.a.DNSQuery(ctx, name); err != nil {
			t.Fatal(err)
		} else if ans.Handler != "original" {
			t.Errorf("petrel dns query %s: %s; want handler original", name, ans)
		}
	}
	resolve("direct.lab.test")
	if f := froms("direct.lab.test"); len(f) == 0 || f[0] != x.a.Host.PublicAddr {
		t.Fatalf("without an exit node the lab DNS saw direct.lab.test from %v, want a's public address %s", f, x.a.Host.PublicAddr)
	}
	x.use(t, "use", "e")
	x.expectSource(t, x.e.Host.PublicAddr, "exit node e")
	resolve("via-exit.lab.test")
	for _, f := range froms("via-exit.lab.test") {
		if f != x.e.Host.PublicAddr {
			t.Errorf("exit node e in use: the lab DNS saw a's query for via-exit.lab.test from %s, want e's public address %s "+
				"(a's public address is %s: a DNS leak past the exit node)", f, x.e.Host.PublicAddr, x.a.Host.PublicAddr)
		}
	}

	// Kill switch on, exit node frozen: nothing reaches the lab DNS.
	x.use(t, "use", "e", "--kill-switch")
	if err := x.e.Proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	const ks = "kill-switch.lab.test"
	recs.Set(ks, webAddr)
	got, err := Dig(ctx, x.a.Host, ks)
	if f := froms(ks); len(f) != 0 || len(got) != 0 {
		t.Errorf("kill switch on, exit node frozen: dig %s answered %v (err %v); the lab DNS saw it from %v", ks, got, err, f)
	}
	if err := x.e.Proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}
