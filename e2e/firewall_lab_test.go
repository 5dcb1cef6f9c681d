//go:build lab

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"petrel/lab"
)

// Access policies enforced by the agents' userspace firewall (client/firewall)
// on real TUN traffic. Every test starts from an account without the
// cluster's allow-all policy unless it needs it, and all agents get
// FirewallArgs(): with PETREL_E2E_NO_FIREWALL=1 they run with
// --debug-no-firewall and these tests must fail.

// denyAll deletes every policy of the account.
func denyAll(t *testing.T, c *Cluster) {
	t.Helper()
	names, err := c.DeleteAllPolicies(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("deleted the account's policies %q: deny-all from here", names)
}

// fwAgents creates EIM NAT hosts with unstarted agents carrying FirewallArgs.
func fwAgents(t *testing.T, c *Cluster, names ...string) []*Agent {
	t.Helper()
	ags := agentHosts(t, c, names...)
	for _, ag := range ags {
		ag.Args = append(ag.Args, FirewallArgs()...)
	}
	return ags
}

// waitUp starts the agent and waits until it is registered (overlay address).
func waitUp(t *testing.T, ag *Agent) *Status {
	t.Helper()
	if err := ag.Start(); err != nil {
		t.Fatal(err)
	}
	st, err := ag.WaitStatus(context.Background(), 60*time.Second, "connected with an address", func(s *Status) bool {
		return s.State == "connected" && s.OverlayIP() != ""
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitSees waits until ag sees every named peer connected.
func waitSees(t *testing.T, ag *Agent, peers ...string) *Status {
	t.Helper()
	st, err := ag.WaitStatus(context.Background(), 60*time.Second, "peers "+strings.Join(peers, ",")+" connected", func(s *Status) bool {
		for _, n := range peers {
			if p := s.Peer(n); p == nil || p.Status != "connected" {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mustGroup(t *testing.T, c *Cluster, name string, peers ...string) {
	t.Helper()
	if _, err := c.CreateGroup(context.Background(), name, peers...); err != nil {
		t.Fatal(err)
	}
}

// dialFails dials addr from h and expects no connection within wait; it
// reports an error when a connection (or a round trip) succeeded.
func dialFails(ctx context.Context, h *lab.Host, addr string, wait time.Duration) error {
	c, err := DialRoundTrip(ctx, h, addr, []byte("must-not-arrive"), wait)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s reached %s", h.Name, addr)
	}
	return nil
}

func fwCounters(t *testing.T, ag *Agent, peer string) FirewallCounters {
	t.Helper()
	m, err := ag.Firewall(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fc, ok := m[peer]
	if !ok {
		t.Errorf("%s's status has no firewall counters for peer %s (peers with counters: %v)", ag.Name, peer, m)
	}
	return fc
}

// TestFirewallPolicyTUN: dev and db with one policy dev→db tcp/5432 (not
// bidirectional) and nothing else. dev reaches db:5432 but not db:22 nor
// ping; db cannot open dev:8080. The trace on both agents names the rule.
// An ICMP rule added with PUT lets the ping through without a restart;
// removing the tcp/5432 rule cuts a connection that was open all along
// (its next round trip fails) while the peers stay connected (the ICMP
// rule keeps them visible, so the cut is the firewall's, not a peer
// removal). The status counters show the drops on both sides.
func TestFirewallPolicyTUN(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	denyAll(t, c)
	ags := fwAgents(t, c, "dev", "db")
	dev, db := ags[0], ags[1]
	sdev, sdb := waitUp(t, dev), waitUp(t, db)
	devIP, dbIP := sdev.OverlayIP(), sdb.OverlayIP()
	if p := sdev.Peer("db"); p != nil {
		t.Errorf("with no policy dev already sees db: %+v", p)
	}
	mustGroup(t, c, "dev", "dev")
	mustGroup(t, c, "db", "db")
	pg := Policy{Name: "dev-to-db", Enabled: true, Rules: []PolicyRule{{Name: "pg", Sources: []string{"dev"},
		Destinations: []string{"db"}, Protocol: "tcp", Ports: []string{"5432"}, Action: "accept"}}}
	pol, err := c.CreatePolicy(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	if len(pol.Rules) != 1 || pol.Rules[0].ID == "" {
		t.Fatalf("policy as stored: %+v", pol)
	}
	pgRule := pol.Rules[0].ID
	t.Logf("policy %s, rule %s: dev→db tcp/5432", pol.ID, pgRule)
	waitSees(t, dev, "db")
	waitSees(t, db, "dev")

	var servers []*TCPEcho
	serve := func(h *lab.Host, addr string) *TCPEcho {
		e, err := StartTCPEcho(h, addr)
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, e)
		return e
	}
	pg5432 := serve(db.Host, net.JoinHostPort(dbIP, "5432"))
	ssh22 := serve(db.Host, net.JoinHostPort(dbIP, "22"))
	web8080 := serve(dev.Host, net.JoinHostPort(devIP, "8080"))
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()

	// Allowed: dev → db:5432, a payload round trip (the first may need the
	// WireGuard handshake: poll).
	var conn net.Conn
	if err := Poll(ctx, 30*time.Second, 200*time.Millisecond, func() bool {
		var err error
		conn, err = DialRoundTrip(ctx, dev.Host, net.JoinHostPort(dbIP, "5432"), []byte("SELECT 1;"), 3*time.Second)
		return err == nil
	}); err != nil {
		t.Fatalf("dev cannot reach db:5432 although the policy allows it: %v", err)
	}
	conn.Close()

	// Denied: other port, ICMP, the reverse direction.
	if err := dialFails(ctx, dev.Host, net.JoinHostPort(dbIP, "22"), 3*time.Second); err != nil {
		t.Errorf("tcp/22 is not allowed: %v", err)
	}
	if out, err := dev.Ping(ctx, dbIP, 2); err == nil {
		t.Errorf("ping dev→db answered without an ICMP rule: %s", lastLine(out))
	}
	if err := dialFails(ctx, db.Host, net.JoinHostPort(devIP, "8080"), 3*time.Second); err != nil {
		t.Errorf("db opened a connection to dev (the rule is not bidirectional): %v", err)
	}
	if n := ssh22.Accepted(); n != 0 {
		t.Errorf("db:22 accepted %d connections", n)
	}
	if n := web8080.Accepted(); n != 0 {
		t.Errorf("dev:8080 accepted %d connections", n)
	}

	// The trace names the rule, on the side that sends (out) and on the
	// side that receives (in).
	checkTrace := func(ag *Agent, want bool, ruleID string, args ...string) {
		t.Helper()
		tr, err := ag.Trace(ctx, args...)
		if err != nil {
			t.Errorf("trace on %s: %v", ag.Name, err)
			return
		}
		t.Logf("%s: debug trace %s: %+v", ag.Name, strings.Join(args, " "), *tr)
		if tr.Allowed != want || tr.RuleID != ruleID || (ruleID != "" && tr.PolicyID != pol.ID) {
			t.Errorf("%s: trace %s = %+v, want allowed=%v rule %q policy %s", ag.Name, strings.Join(args, " "), *tr, want, ruleID, pol.ID)
		}
	}
	checkTrace(dev, true, pgRule+"/out", "self", "db", "tcp", "5432")
	checkTrace(dev, false, "", "self", "db", "tcp", "22")
	checkTrace(db, true, pgRule+"/in", "dev", "self", "tcp", "5432")
	checkTrace(db, false, "", "dev", "self", "tcp", "22")
	checkTrace(db, false, "", "self", "dev", "tcp", "8080")
	// The literal form of the CLI's own example (peer names on both sides).
	for _, ag := range []*Agent{dev, db} {
		tr, err := ag.Trace(ctx, "dev", "db", "tcp", "5432")
		t.Logf("%s: debug trace dev db tcp 5432 (names only): %+v, err %v", ag.Name, tr, err)
	}

	// Counters: allowed and dropped on both sides.
	fdev, fdb := fwCounters(t, dev, "db"), fwCounters(t, db, "dev")
	t.Logf("counters: dev[db] %+v, db[dev] %+v", fdev, fdb)
	if fdev.OutAllowed == 0 || fdev.OutDropped == 0 {
		t.Errorf("dev's counters for db should show allowed (5432) and dropped (22, ping) outbound packets: %+v", fdev)
	}
	if fdb.InAllowed == 0 || fdb.OutDropped == 0 {
		t.Errorf("db's counters for dev should show allowed inbound (5432) and dropped outbound (8080) packets: %+v", fdb)
	}

	// A long-lived connection, opened now and kept.
	live, err := DialRoundTrip(ctx, dev.Host, net.JoinHostPort(dbIP, "5432"), []byte("BEGIN;"), 5*time.Second)
	if err != nil {
		t.Fatalf("open the long-lived connection: %v", err)
	}
	defer live.Close()

	// Add an ICMP rule: the ping goes through on a later attempt, no restart.
	pg.Rules[0].ID = pgRule
	icmp := PolicyRule{Name: "icmp", Sources: []string{"dev"}, Destinations: []string{"db"}, Protocol: "icmp", Action: "accept"}
	withICMP := pg
	withICMP.Rules = []PolicyRule{pg.Rules[0], icmp}
	if _, err := c.UpdatePolicy(ctx, pol.ID, withICMP); err != nil {
		t.Fatal(err)
	}
	if err := dev.WaitPing(ctx, dbIP, 30*time.Second); err != nil {
		t.Fatalf("after adding the ICMP rule: %v", err)
	}
	if err := RoundTrip(live, []byte("SELECT 2;"), 5*time.Second); err != nil {
		t.Errorf("a rule change that still allows tcp/5432 cut the open connection: %v", err)
	}
	if out, err := db.Ping(ctx, devIP, 1); err == nil {
		t.Errorf("ping db→dev answered (the ICMP rule is dev→db only): %s", lastLine(out))
	}

	// Remove the tcp/5432 rule: the open connection is cut at its next packet.
	onlyICMP := pg
	onlyICMP.Rules = []PolicyRule{icmp}
	before := fwCounters(t, dev, "db")
	if _, err := c.UpdatePolicy(ctx, pol.ID, onlyICMP); err != nil {
		t.Fatal(err)
	}
	// Round trips on the open connection until one fails (the change has
	// reached the agents), for up to 30 s.
	i := 0
	var rtErr error
	if err := Poll(ctx, 30*time.Second, 200*time.Millisecond, func() bool {
		i++
		rtErr = RoundTrip(live, []byte(fmt.Sprintf("SELECT %d;", 100+i)), 2*time.Second)
		return rtErr != nil
	}); err != nil {
		t.Errorf("the established connection to db:5432 still works 30 s after its rule was removed (%d round trips)", i)
	} else {
		t.Logf("established connection: round trip %d after the rule was removed failed: %v", i, rtErr)
		// Cut, not slow: nothing comes back on it, not even a late echo.
		_ = live.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = live.Write([]byte("SELECT 999;"))
		if n, err := live.Read(make([]byte, 64)); n > 0 {
			t.Errorf("the connection delivered %d bytes after the cut (err %v)", n, err)
		}
	}
	checkTrace(dev, false, "", "self", "db", "tcp", "5432")
	checkTrace(db, false, "", "dev", "self", "tcp", "5432")
	if err := dialFails(ctx, dev.Host, net.JoinHostPort(dbIP, "5432"), 3*time.Second); err != nil {
		t.Errorf("a new connection to db:5432 after the rule was removed: %v", err)
	}
	// The peers are still connected (the ICMP rule keeps them visible).
	if out, err := dev.Ping(ctx, dbIP, 2); err != nil {
		t.Errorf("ping dev→db after removing the tcp rule: %v: %s", err, out)
	}
	after := fwCounters(t, dev, "db")
	t.Logf("dev[db] counters before the cut %+v, after %+v; db:5432 accepted %d connections", before, after, pg5432.Accepted())
	if after.OutDropped <= before.OutDropped {
		t.Errorf("dev's out_dropped for db did not grow with the cut connection: before %+v after %+v", before, after)
	}
}

// TestFirewallSpoofedSourceDropped: a, b and c, allow-all policy. From a's
// namespace a raw socket (IP_HDRINCL) sends UDP to b's overlay address
// with a source that is not a's: c's overlay address, and an unused
// overlay address. a's kernel routes them into petrel0 (the destination
// is in the overlay), a's WireGuard encrypts them to b, and b's WireGuard
// must drop them (inner source outside a's allowed IPs): b's UDP echo
// sees none of them, and b's status counts them as spoofed for a. The
// same raw socket with a's own source reaches b (so the raw path itself
// works and goes through the tunnel), as does an ordinary socket.
func TestFirewallSpoofedSourceDropped(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	ags := fwAgents(t, c, "a", "b", "c")
	a, b, cc := ags[0], ags[1], ags[2]
	startAgents(t, a, b, cc)
	ips := map[string]netip.Addr{}
	var overlay netip.Prefix
	for _, ag := range ags {
		st, err := ag.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ips[ag.Name] = netip.MustParseAddr(st.OverlayIP())
		overlay = netip.MustParsePrefix(st.IP).Masked()
	}
	// An overlay address no agent has.
	var unused netip.Addr
	o := overlay.Addr().As4()
	for i := byte(250); unused == (netip.Addr{}); i-- {
		if cand := netip.AddrFrom4([4]byte{o[0], o[1], 250, i}); !slices.Contains([]netip.Addr{ips["a"], ips["b"], ips["c"]}, cand) {
			unused = cand
		}
	}
	if !overlay.Contains(unused) {
		t.Fatalf("%s is not in the overlay %s", unused, overlay)
	}
	t.Logf("overlay %s: a %s, b %s, c %s, unused %s", overlay, ips["a"], ips["b"], ips["c"], unused)

	target := netip.AddrPortFrom(ips["b"], 7000)
	echo, err := StartEcho(b.Host, target)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()

	// Sanity 1: an ordinary socket on a reaches b's echo from a's address.
	p, err := NewProber(a.Host, false, "")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.WaitSource(ctx, target, 30*time.Second, Is(ips["a"])); err != nil {
		t.Fatal(err)
	}
	raw, err := NewRawSender(a.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// Sanity 2: the raw socket with a's own source arrives too.
	own := netip.AddrPortFrom(ips["a"], 40001)
	_, fromA0 := echo.Arrivals(ips["a"])
	if err := Poll(ctx, 10*time.Second, 200*time.Millisecond, func() bool {
		if err := raw.SendUDP(own, target, []byte("raw-own")); err != nil {
			t.Fatalf("raw send with a's own source: %v", err)
		}
		_, n := echo.Arrivals(ips["a"])
		return n > fromA0
	}); err != nil {
		t.Fatalf("a raw packet with a's own source never reached b: %v", err)
	}
	before, err := b.Firewall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before["a"].Spoofed != 0 {
		t.Errorf("b counts %d spoofed packets from a before any was sent", before["a"].Spoofed)
	}

	// The spoofed packets: c's address and an unused one, from a.
	victim := ips["c"]
	const each = 5
	for i := 0; i < each; i++ {
		for _, src := range []netip.Addr{victim, unused} {
			if err := raw.SendUDP(netip.AddrPortFrom(src, 40002), target, []byte(fmt.Sprintf("spoofed-%d", i))); err != nil {
				t.Fatalf("raw send from %s: %v", src, err)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	var after map[string]FirewallCounters
	if err := Poll(ctx, 10*time.Second, 200*time.Millisecond, func() bool {
		after, err = b.Firewall(ctx)
		return err == nil && after["a"].Spoofed >= 2*each
	}); err != nil {
		t.Errorf("b's firewall.spoofed for a: %d, want >= %d (%v)", after["a"].Spoofed, 2*each, err)
	}
	// A last ordinary probe after the spoofed ones: anything spoofed that
	// was going to arrive has arrived by the time its answer is back.
	if _, err := p.WaitSource(ctx, target, 10*time.Second, Is(ips["a"])); err != nil {
		t.Fatal(err)
	}
	_, fromC := echo.Arrivals(victim)
	_, fromUnused := echo.Arrivals(unused)
	total, fromA := echo.Arrivals(ips["a"])
	t.Logf("b's echo: %d datagrams, %d from a, %d from c's address, %d from %s; b's counters for a %+v, for c %+v",
		total, fromA, fromC, fromUnused, unused, after["a"], after["c"])
	if fromC != 0 || fromUnused != 0 {
		t.Errorf("spoofed datagrams reached b's socket: %d with c's source, %d with %s", fromC, fromUnused, unused)
	}
	if after["c"].Spoofed != 0 {
		t.Errorf("b blames c for %d spoofed packets (c sent none)", after["c"].Spoofed)
	}
}

// TestFirewallRoutedBySourceGroup: the site LAN (10.20.0.0/24, host
// 10.20.0.2 with a UDP echo on 7000 and a TCP echo on 7001) behind routing
// peer r; one route via r, masquerade, distributed to All, so every client
// gets it. Groups: ops = {a1}, guest = {a2, a3}, routers = {r}. Policies:
// ops→routers all; guest→routers icmp only (guests may ping r; the route
// alone would make r visible too, but without a rule naming them r keeps
// no per-peer counters for the guests). So the route is installed on every
// client, and only ops may use it for TCP/UDP:
//   - a1 reaches the LAN host (UDP and TCP echo, masqueraded by r).
//   - a2 (firewall on) does not: its own outbound filter drops the packets
//     (trace on a2 says so, and r sees no dropped packet from a2).
//   - a3 runs with --debug-no-firewall (a client that enforces nothing):
//     its packets reach r, whose forward check by source drops them: the
//     LAN host sees nothing, r's in_dropped for a3 grows.
//   - `petrel debug trace` on r: allowed for a1's source with the ops
//     rule, dropped for a2's and a3's.
//
// Note: an ICMP rule to a routing peer also covers the networks it routes
// (client/firewall semantics), so guests can ping the LAN host; the test
// logs that trace rather than asserting either way.
func TestFirewallRoutedBySourceGroup(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	denyAll(t, c)
	ags := fwAgents(t, c, "r", "a1", "a2", "a3")
	r, a1, a2, a3 := ags[0], ags[1], ags[2], ags[3]
	a3.Args = append(a3.Args, "--debug-no-firewall")
	site, echo, via := addSite(t, c, r)
	tcpEcho, err := StartTCPEcho(site, "10.20.0.2:7001")
	if err != nil {
		t.Fatal(err)
	}
	defer tcpEcho.Close()
	siteTCP := "10.20.0.2:7001"
	for _, ag := range ags {
		waitUp(t, ag)
	}
	mustGroup(t, c, "routers", "r")
	mustGroup(t, c, "ops", "a1")
	mustGroup(t, c, "guest", "a2", "a3")
	pol, err := c.CreatePolicy(ctx, Policy{Name: "ops-to-routers", Enabled: true, Rules: []PolicyRule{{
		Name: "ops", Sources: []string{"ops"}, Destinations: []string{"routers"}, Protocol: "all", Action: "accept"}}})
	if err != nil {
		t.Fatal(err)
	}
	opsRule := pol.Rules[0].ID
	if _, err := c.CreatePolicy(ctx, Policy{Name: "guest-ping-routers", Enabled: true, Rules: []PolicyRule{{
		Name: "guest-icmp", Sources: []string{"guest"}, Destinations: []string{"routers"}, Protocol: "icmp", Action: "accept"}}}); err != nil {
		t.Fatal(err)
	}
	addRoute(t, c, RouteSpec{Network: siteNet, Peer: "r", Masquerade: true, Groups: []string{"All"}})
	for _, cl := range []*Agent{a1, a2, a3} {
		waitSees(t, cl, "r")
		if _, err := cl.WaitRoutes(ctx, 30*time.Second, "site route installed", func(rs []RouteStatus) bool {
			x := findRoute(rs, siteNet, "r")
			return x != nil && x.State == "installed" && x.Chosen
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitSees(t, r, "a1", "a2", "a3")

	// ops uses the route.
	p1, err := NewProber(a1.Host, false, "")
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	src, err := p1.WaitSource(ctx, siteEcho, 30*time.Second, Anything)
	if err != nil {
		t.Fatalf("a1 (ops) cannot reach the LAN host: %v", err)
	}
	if via[src] != "r" {
		t.Errorf("the LAN host saw a1 from %s, want r's masquerade address", src)
	}
	var cn net.Conn
	if err := Poll(ctx, 30*time.Second, 200*time.Millisecond, func() bool {
		cn, err = DialRoundTrip(ctx, a1.Host, siteTCP, []byte("ops-tcp"), 3*time.Second)
		return err == nil
	}); err != nil {
		t.Fatalf("a1 (ops) TCP to %s: %v (last %v)", siteTCP, err, err)
	}
	cn.Close()

	// guests may ping r (their policy is in effect and r is connected)...
	rst, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a2.WaitPing(ctx, rst.OverlayIP(), 30*time.Second); err != nil {
		t.Errorf("guest a2 cannot ping r (guest→routers icmp): %v", err)
	}
	// ...but not use the route for TCP/UDP.
	udpBefore, _ := echo.Arrivals(netip.Addr{})
	tcpBefore := tcpEcho.Accepted()
	rBefore, err := r.Firewall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*Agent{a2, a3} {
		pg, err := NewProber(g.Host, false, "")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if from, err := pg.Probe(siteEcho, time.Second); err == nil {
				t.Errorf("%s (guest) reached the LAN host's UDP echo (seen from %s)", g.Name, from)
			}
		}
		pg.Close()
		if err := dialFails(ctx, g.Host, siteTCP, 3*time.Second); err != nil {
			t.Errorf("guest: %v", err)
		}
	}
	udpAfter, _ := echo.Arrivals(netip.Addr{})
	if udpAfter != udpBefore || tcpEcho.Accepted() != tcpBefore {
		t.Errorf("the LAN host got guest traffic: UDP %d→%d datagrams, TCP %d→%d connections",
			udpBefore, udpAfter, tcpBefore, tcpEcho.Accepted())
	}
	rAfter, err := r.Firewall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a1c, a2c := fwCounters(t, a1, "r"), fwCounters(t, a2, "r")
	t.Logf("r[a1] %+v; r[a2] %+v → %+v; r[a3] %+v → %+v; a1[r] %+v; a2[r] %+v",
		rAfter["a1"], rBefore["a2"], rAfter["a2"], rBefore["a3"], rAfter["a3"], a1c, a2c)
	// a3 sent 3 UDP probes and at least 2 SYNs, all dropped at r.
	if got := rAfter["a3"].InDropped - rBefore["a3"].InDropped; got < 5 {
		t.Errorf("r's forward check counted %d dropped packets from a3, want >= 5: %+v → %+v", got, rBefore["a3"], rAfter["a3"])
	}
	// a2's packets never left a2.
	if rAfter["a2"].InDropped != rBefore["a2"].InDropped {
		t.Errorf("r dropped packets from a2: a2's own filter should have stopped them: %+v → %+v", rBefore["a2"], rAfter["a2"])
	}
	if rAfter["a1"].InAllowed == 0 {
		t.Errorf("r counts no allowed packets from a1: %+v", rAfter["a1"])
	}
	for _, w := range []struct {
		ag    *Agent
		args  []string
		allow bool
	}{
		{a2, []string{"self", "10.20.0.2", "tcp", "7001"}, false},
		{a2, []string{"self", "10.20.0.2", "udp", "7000"}, false},
		{a1, []string{"self", "10.20.0.2", "tcp", "7001"}, true},
	} {
		tr, err := w.ag.Trace(ctx, w.args...)
		if err != nil {
			t.Errorf("trace on %s: %v", w.ag.Name, err)
			continue
		}
		t.Logf("%s: debug trace %s: %+v", w.ag.Name, strings.Join(w.args, " "), *tr)
		if tr.Allowed != w.allow || tr.Direction != "out" {
			t.Errorf("%s: trace %s = %+v, want allowed=%v direction out", w.ag.Name, strings.Join(w.args, " "), *tr, w.allow)
		}
	}

	// r's decision by source.
	for _, w := range []struct {
		src   string
		proto string
		port  string
		allow bool
		rule  string
	}{
		{"a1", "tcp", "7001", true, opsRule + "/in"},
		{"a1", "udp", "7000", true, opsRule + "/in"},
		{"a2", "tcp", "7001", false, ""},
		{"a3", "udp", "7000", false, ""},
	} {
		tr, err := r.Trace(ctx, w.src, "10.20.0.2", w.proto, w.port)
		if err != nil {
			t.Errorf("trace on r: %v", err)
			continue
		}
		t.Logf("r: debug trace %s 10.20.0.2 %s %s: %+v", w.src, w.proto, w.port, *tr)
		if tr.Allowed != w.allow || tr.RuleID != w.rule || tr.Direction != "in" {
			t.Errorf("r: trace %s→10.20.0.2 %s/%s = %+v, want allowed=%v rule %q direction in", w.src, w.proto, w.port, *tr, w.allow, w.rule)
		}
	}
	if tr, err := r.Trace(ctx, "a2", "10.20.0.2", "icmp"); err == nil {
		t.Logf("r: debug trace a2 10.20.0.2 icmp (the guests' ICMP rule extends to r's networks): %+v", *tr)
	}
	// ops still works after all this (nothing above disturbed r).
	if _, err := p1.WaitSource(ctx, siteEcho, 10*time.Second, Anything); err != nil {
		t.Errorf("a1 lost the route: %v", err)
	}
}
