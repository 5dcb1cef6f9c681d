//go:build lab

package e2e

import (
	"context"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"petrel/lab"
)

// Exit nodes: a's internet traffic leaves through e (route 0.0.0.0/0 via
// e, masquerade), while a's control plane stays on a's underlay; the kill
// switch drops what would leak; IPv6 does not bypass the exit node.

var webAddr = netip.MustParseAddr("203.0.113.80")

// exitLab is the exit-node rig: agents a and e behind EIM NATs, an
// "internet" host web (203.0.113.80, not a peer) with a UDP Echo on port
// 7000 that reports the source address it sees, and the exit route.
type exitLab struct {
	c      *Cluster
	a, e   *Agent
	web    *lab.Host
	echo   *Echo
	target netip.AddrPort
	p      *Prober // unbound probe socket on a
}

func newExitLab(t *testing.T, ipv6 bool, aArgs ...string) *exitLab {
	t.Helper()
	ctx := context.Background()
	x := &exitLab{c: newCluster(t), target: netip.AddrPortFrom(webAddr, 7000)}
	ags := agentHosts(t, x.c, "a", "e")
	x.a, x.e = ags[0], ags[1]
	x.a.Args = append(x.a.Args, aArgs...)
	var err error
	if x.web, err = x.c.Lab.AddServerHost("web", webAddr); err != nil {
		t.Fatal(err)
	}
	if ipv6 {
		for _, h := range []*lab.Host{x.web, x.a.Host} {
			if _, err := h.EnableIPv6(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if x.echo, err = StartEcho(x.web, x.target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.echo.Close() })
	if x.p, err = NewProber(x.a.Host, false, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.p.Close() })
	startAgents(t, x.a, x.e)
	// SIGCONT in case a test froze e (a stopped process ignores SIGTERM
	// until continued, which would stall the lab's teardown).
	t.Cleanup(func() { _ = x.e.Proc.Signal(syscall.SIGCONT) })
	addRoute(t, x.c, RouteSpec{Network: "0.0.0.0/0", Peer: "e", Masquerade: true})
	if _, err := x.a.WaitRoutes(ctx, 30*time.Second, "exit route offered", func(rs []RouteStatus) bool {
		r := findRoute(rs, "0.0.0.0/0", "e")
		return r != nil && r.State == "exit-idle"
	}); err != nil {
		t.Fatal(err)
	}
	x.expectSource(t, x.a.Host.PublicAddr, "no exit node")
	return x
}

// expectSource waits until a's probes reach web with source want.
func (x *exitLab) expectSource(t *testing.T, want netip.Addr, when string) {
	t.Helper()
	if _, err := x.p.WaitSource(context.Background(), x.target, 60*time.Second, Is(want)); err != nil {
		t.Fatalf("%s: a's traffic should reach web from %s: %v", when, want, err)
	}
}

// use runs `petrel exit-node ARGS` on a and waits until the status agrees.
func (x *exitLab) use(t *testing.T, args ...string) *Status {
	t.Helper()
	if err := x.a.ExitNode(context.Background(), args...); err != nil {
		t.Fatal(err)
	}
	on := args[0] == "use"
	st, err := x.a.WaitStatus(context.Background(), 30*time.Second, "exit node "+strings.Join(args, " "), func(s *Status) bool {
		return s.ExitNode != nil && s.ExitNode.Active == on && (!on || s.ExitNode.PeerName == "e")
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (x *exitLab) table7120(t *testing.T) string {
	t.Helper()
	out, err := x.a.Host.Run(context.Background(), "ip", "route", "show", "table", "7120")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExitNodeControlPlaneStaysOnUnderlay: with e as exit node a's traffic
// to web arrives from e's public address, and a's management, signal and
// relay connections stay on a's underlay: the same established TCP
// connections (local ports) throughout, a counter of packets to the
// control-plane addresses on a's uplink keeps growing while its twin on
// petrel0 stays 0, and the status shows all three connected every second
// for 20 s while e is frozen (selected while frozen: the overlay default
// route is in place but leads nowhere). A route created through REST in
// that window reaches a: the management stream is alive. After SIGCONT,
// a's internet traffic flows through e again.
func TestExitNodeControlPlaneStaysOnUnderlay(t *testing.T) {
	x := newExitLab(t, false)
	ctx := context.Background()
	a, e := x.a, x.e
	cp := []string{lab.ServerAddr.String(), lab.RelayEUAddr.String(), lab.RelayUSAddr.String()}
	set := "{ " + strings.Join(cp, ", ") + " }"
	if err := NftCounters(ctx, a.Host.NS, "e2ecount", `
  counter underlay {}
  counter overlay {}
  chain post {
    type filter hook postrouting priority 400; policy accept;
    oifname "`+a.Host.Dev+`" ip daddr `+set+` counter name "underlay"
    oifname "`+Iface+`" ip daddr `+set+` counter name "overlay"
  }`); err != nil {
		t.Fatal(err)
	}
	counters := func() (under, over uint64) {
		t.Helper()
		var err error
		if under, err = NftCounter(ctx, a.Host.NS, "e2ecount", "underlay"); err != nil {
			t.Fatal(err)
		}
		if over, err = NftCounter(ctx, a.Host.NS, "e2ecount", "overlay"); err != nil {
			t.Fatal(err)
		}
		return under, over
	}
	remotes := []string{cp[0] + ":" + ServerPort, cp[1] + ":" + ServerPort, cp[2] + ":" + ServerPort}
	conns0, err := TCPConns(ctx, a.Host, remotes...)
	if err != nil {
		t.Fatal(err)
	}
	if len(conns0) == 0 {
		t.Fatal("a has no TCP connection to the control plane")
	}
	t.Logf("a's control-plane connections: %v", keys(conns0))

	// e live: a's internet traffic leaves from e's public address.
	st := x.use(t, "use", "e")
	x.expectSource(t, e.Host.PublicAddr, "exit node e")
	t.Logf("exit node: %+v; a reaches web from %s", *st.ExitNode, e.Host.PublicAddr)
	x.use(t, "off")
	x.expectSource(t, a.Host.PublicAddr, "exit node off")

	// e frozen, then selected.
	if err := e.Proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	x.use(t, "use", "e")
	if tbl := x.table7120(t); !strings.Contains(tbl, "default dev "+Iface) {
		t.Fatalf("exit node selected but a's table 7120 has no default dev %s:\n%s", Iface, tbl)
	}
	if _, err := x.p.Probe(x.target, time.Second); err == nil {
		t.Fatal("web answered a while the exit node is frozen")
	}
	u1, _ := counters()
	routeSeen := time.Duration(-1)
	start := time.Now()
	addRoute(t, x.c, RouteSpec{Network: "10.77.0.0/24", Peer: "e"})
	for i := 0; i < 21; i++ {
		s, err := a.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Management.Connected || !s.Signal.Connected || !s.Relay.Connected {
			t.Fatalf("%v after freezing the exit node a lost its control plane: management %v signal %v relay %v (%s)",
				time.Since(start).Round(time.Second), s.Management.Connected, s.Signal.Connected, s.Relay.Connected, s.LastError)
		}
		if routeSeen < 0 && s.Route("10.77.0.0/24", "e") != nil {
			routeSeen = time.Since(start)
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * time.Second)))
	}
	if routeSeen < 0 {
		t.Fatal("a route created through REST did not reach a within 20 s while the exit node was frozen")
	}
	t.Logf("the REST route reached a after %v", routeSeen.Round(time.Millisecond))
	u2, over := counters()
	t.Logf("packets to the control plane: underlay %d -> %d during the 20 s; on %s %d", u1, u2, Iface, over)
	if u2 <= u1 {
		t.Errorf("no control-plane packets left a's underlay in 20 s (%d -> %d)", u1, u2)
	}
	if over != 0 {
		t.Errorf("%d control-plane packets went into %s", over, Iface)
	}
	conns1, err := TCPConns(ctx, a.Host, remotes...)
	if err != nil {
		t.Fatal(err)
	}
	for k := range conns0 {
		if !conns1[k] {
			t.Errorf("control-plane connection %s is gone (now %v)", k, keys(conns1))
		}
	}

	if err := e.Proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	x.expectSource(t, e.Host.PublicAddr, "exit node resumed")
	t.Logf("a's traffic leaves through e again %v after SIGCONT", time.Since(resumed).Round(time.Millisecond))
}

// TestExitNodeKillSwitch: with the kill switch on and the exit node frozen,
// nothing a sends to web leaves unencapsulated, not even from a socket
// bound to a's uplink (SO_BINDTODEVICE, which ignores the overlay default
// route): web receives nothing and a counter on a's NAT router (forwarded
// packets to web) stays put. The same bound socket does leak once the kill
// switch is turned off, and `exit-node off` sends everything directly
// again: the checks can fail.
func TestExitNodeKillSwitch(t *testing.T) {
	x := newExitLab(t, false)
	ctx := context.Background()
	a, e := x.a, x.e
	if err := NftCounters(ctx, a.Host.RouterNS, "e2ecount", `
  counter leak {}
  chain count {
    type filter hook forward priority -300; policy accept;
    ip daddr `+webAddr.String()+` counter name "leak"
  }`); err != nil {
		t.Fatal(err)
	}
	leaked := func() uint64 {
		t.Helper()
		n, err := NftCounter(ctx, a.Host.RouterNS, "e2ecount", "leak")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	bound, err := NewProber(a.Host, false, a.Host.Dev)
	if err != nil {
		t.Fatal(err)
	}
	defer bound.Close()

	st := x.use(t, "use", "e", "--kill-switch")
	if !st.ExitNode.KillSwitch {
		t.Fatalf("kill switch not reported: %+v", *st.ExitNode)
	}
	x.expectSource(t, e.Host.PublicAddr, "exit node e with kill switch")
	if out, err := a.Host.Run(ctx, "nft", "list", "table", "inet", "petrel-exit"); err != nil {
		t.Fatalf("no kill-switch table: %v", err)
	} else {
		t.Logf("a's kill switch:\n%s", out)
	}

	if err := e.Proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	l0 := leaked()
	w0, _ := x.echo.Arrivals(netip.Addr{})
	var sendErrs []string
	for i := 0; i < 15; i++ {
		for _, p := range []*Prober{x.p, bound} {
			if err := p.Send(x.target); err != nil && len(sendErrs) < 2 {
				sendErrs = append(sendErrs, err.Error())
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // in flight
	w1, _ := x.echo.Arrivals(netip.Addr{})
	if l1 := leaked(); l1 != l0 || w1 != w0 {
		t.Fatalf("kill switch on, exit node frozen: %d packets to web crossed a's router, web received %d", l1-l0, w1-w0)
	}
	t.Logf("kill switch held: 30 probes (15 from a socket bound to %s), none left a (send errors: %v)", a.Host.Dev, sendErrs)
	if _, err := a.WaitStatus(ctx, 10*time.Second, "control plane up under the kill switch", func(s *Status) bool {
		return s.Management.Connected && s.Signal.Connected && s.Relay.Connected
	}); err != nil {
		t.Fatal(err)
	}

	// Sanity: without the kill switch the bound socket leaks (web sees a's
	// own public address), so the check above can fail.
	x.use(t, "use", "e", "--kill-switch=false")
	if err := waitArrival(ctx, bound, x.echo, x.target, a.Host.PublicAddr, 15*time.Second); err != nil {
		t.Fatalf("without the kill switch a bound socket should leak past the frozen exit node: %v", err)
	}
	if leaked() == l0 {
		t.Error("the router counter missed the leaked packets")
	}
	x.use(t, "off")
	x.expectSource(t, a.Host.PublicAddr, "exit node off")
}

// waitArrival sends from p every 200 ms until the echo counts a new
// datagram from src.
func waitArrival(ctx context.Context, p *Prober, echo *Echo, to netip.AddrPort, src netip.Addr, timeout time.Duration) error {
	_, n0 := echo.Arrivals(src)
	return Poll(ctx, timeout, 200*time.Millisecond, func() bool {
		_ = p.Send(to)
		time.Sleep(50 * time.Millisecond)
		_, n := echo.Arrivals(src)
		return n > n0
	})
}

// TestExitNodeNoIPv6Leak: a has IPv6 on its underlay (a routed LAN behind
// its router, lab.Host.EnableIPv6) and reaches web's IPv6 address directly.
// With the exit node in use (the overlay has no IPv6) a's IPv6 to web is
// refused at once and nothing arrives at web, while a's IPv6 LAN (its
// router) stays reachable (allow-lan). After `exit-node off` web is
// reachable over IPv6 again.
func TestExitNodeNoIPv6Leak(t *testing.T) {
	x := newExitLab(t, true)
	ctx := context.Background()
	a, e := x.a, x.e
	web6, err := x.web.EnableIPv6()
	if err != nil {
		t.Fatal(err)
	}
	a6, err := a.Host.EnableIPv6()
	if err != nil {
		t.Fatal(err)
	}
	gw6 := netip.PrefixFrom(a6, 64).Masked().Addr().Next() // the router's LAN address (::1)
	tcp6 := netip.AddrPortFrom(web6, 7001)
	accepted, stop, err := ListenTCPCount(x.web, tcp6)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	dial := func() (time.Duration, error) {
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		start := time.Now()
		c, err := a.Host.DialContext(dctx, "tcp6", tcp6.String())
		if err == nil {
			c.Close()
		}
		return time.Since(start), err
	}
	waitDial := func(when string) {
		t.Helper()
		var last error
		if err := Poll(ctx, 30*time.Second, 200*time.Millisecond, func() bool { _, last = dial(); return last == nil }); err != nil {
			t.Fatalf("%s: a cannot reach web over IPv6: %v (last %v)", when, err, last)
		}
	}
	waitDial("before the exit node")

	x.use(t, "use", "e")
	x.expectSource(t, e.Host.PublicAddr, "exit node e")
	n0 := accepted()
	took, err := dial()
	if err == nil {
		t.Fatalf("with the exit node in use a connected to web over IPv6 (%s): IPv6 bypasses the exit node", tcp6)
	}
	t.Logf("IPv6 connect refused after %v: %v", took.Round(time.Microsecond), err)
	if out, err := a.Ping(ctx, web6.String(), 2); err == nil {
		t.Errorf("ping %s answered with the exit node in use:\n%s", web6, out)
	}
	get, _ := a.Host.Run(ctx, "ip", "-6", "route", "get", web6.String())
	t.Logf("a: ip -6 route get %s: %s", web6, strings.TrimSpace(get))
	if out, err := a.Host.Run(ctx, "ping", "-6", "-n", "-c", "1", "-W", "2", gw6.String()); err != nil {
		t.Errorf("a's IPv6 LAN (%s) unreachable with allow-lan: %v\n%s", gw6, err, out)
	}
	if n := accepted(); n != n0 {
		t.Errorf("web accepted %d IPv6 connections from a while the exit node was in use", n-n0)
	}

	x.use(t, "off")
	waitDial("after exit-node off")
	x.expectSource(t, a.Host.PublicAddr, "exit node off")
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
