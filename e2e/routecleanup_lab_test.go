//go:build lab

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRouteCrashCleanup: what the agents change on the host for routes and
// exit nodes is undone after a SIGKILL. On a (exit node r with the kill
// switch: rules, table 7120 incl. the IPv6 unreachable default, nft tables
// petrel-exit and the mark table, sysctls) and on r (serving a masqueraded
// network and the exit node: ip_forward, nft petrel-fwd), the snapshot of
// rules, routes of all tables, the nft ruleset and the forwarding and
// rp_filter sysctls must be byte for byte what it was before `petrel up`:
//   - after `petrel debug cleanup` (and a second run undoes nothing);
//   - after the next `petrel up` on the same state dir (which cleans up the
//     crashed run first) is stopped with SIGTERM: a start that re-applied
//     on top of the leftovers would journal them as the values to restore.
func TestRouteCrashCleanup(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	ags := agentHosts(t, c, "a", "r")
	a, r := ags[0], ags[1]
	a.Args = append(a.Args, "--exit-node-kill-switch")
	addSite(t, c, r)
	before := map[*Agent]string{}
	for _, ag := range ags {
		s, err := HostSnapshot(ctx, ag.Host)
		if err != nil {
			t.Fatal(err)
		}
		before[ag] = s
	}
	startAgents(t, a, r)
	addRoute(t, c, RouteSpec{Network: siteNet, Peer: "r", Masquerade: true})
	addRoute(t, c, RouteSpec{Network: "0.0.0.0/0", Peer: "r", Masquerade: true})
	if _, err := a.WaitRoutes(ctx, 30*time.Second, "exit route offered", func(rs []RouteStatus) bool {
		return findRoute(rs, "0.0.0.0/0", "r") != nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.ExitNode(ctx, "use", "r"); err != nil {
		t.Fatal(err)
	}

	// engaged waits until a uses r as exit node with the kill switch and
	// reaches the site through r.
	engaged := func(when string) {
		t.Helper()
		if _, err := a.WaitStatus(ctx, 60*time.Second, when+": exit node r with kill switch, site installed", func(s *Status) bool {
			rt := s.Route(siteNet, "r")
			return s.ExitNode != nil && s.ExitNode.Active && s.ExitNode.KillSwitch && rt != nil && rt.State == "installed"
		}); err != nil {
			t.Fatal(err)
		}
		if err := a.WaitPing(ctx, siteEcho.Addr().String(), 60*time.Second); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
	}
	engaged("first run")
	for ag, want := range map[*Agent][]string{a: {"petrel-exit", "7110", "7120"}, r: {"petrel-fwd", "ip_forward = 1"}} {
		s, err := HostSnapshot(ctx, ag.Host)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(s, w) {
				t.Fatalf("%s while running: no %q in\n%s", ag.Name, w, s)
			}
		}
	}

	killBoth := func() {
		t.Helper()
		for _, ag := range ags {
			if err := ag.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// compare checks each host against its snapshot from before `up`.
	compare := func(when string) {
		t.Helper()
		for _, ag := range ags {
			s, err := HostSnapshot(ctx, ag.Host)
			if err != nil {
				t.Fatal(err)
			}
			if d := SnapshotDiff(before[ag], s); d != "" {
				t.Errorf("%s: %s differs from before `petrel up` (- before, + now):\n%s", when, ag.Name, d)
			}
		}
	}
	cleanup := func(ag *Agent) string {
		t.Helper()
		out, err := ag.Host.Run(ctx, ag.Bins.Petrel, "debug", "cleanup", "--state-dir", ag.StateDir)
		if err != nil {
			t.Fatalf("%s: petrel debug cleanup: %v", ag.Name, err)
		}
		return strings.TrimSpace(out)
	}

	killBoth()
	for _, ag := range ags {
		s, _ := HostSnapshot(ctx, ag.Host)
		d := SnapshotDiff(before[ag], s)
		if d == "" {
			t.Fatalf("%s: nothing left behind after SIGKILL: the test would prove nothing", ag.Name)
		}
		t.Logf("%s left behind after SIGKILL:\n%s", ag.Name, d)
	}
	for _, ag := range ags {
		out := cleanup(ag)
		t.Logf("%s: petrel debug cleanup: %s", ag.Name, out)
		if out == "undid 0 change(s)" {
			t.Errorf("%s: the first cleanup undid nothing", ag.Name)
		}
	}
	compare("after petrel debug cleanup")
	for _, ag := range ags {
		if out := cleanup(ag); out != "undid 0 change(s)" {
			t.Errorf("%s: second petrel debug cleanup: %q, want nothing undone", ag.Name, out)
		}
	}
	compare("after a second petrel debug cleanup")
	if t.Failed() {
		return
	}

	// Variant: the next start cleans up. a keeps its exit-node choice (the
	// profile) and starts with its kill switch table left behind.
	startAgents(t, r, a)
	engaged("second run")
	killBoth()
	startAgents(t, r, a)
	engaged("run after the crash")
	for _, ag := range ags {
		rules, err := ag.Host.Run(ctx, "ip", "rule", "show")
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(rules, "lookup 7120"); n > 1 {
			t.Errorf("%s: %d rules for table 7120 after the restart (left over and added again):\n%s", ag.Name, n, rules)
		}
	}
	for _, ag := range ags {
		if err := ag.Stop(); err != nil {
			t.Errorf("%s: stop: %v\n%s", ag.Name, err, tail(ag.Proc.Output(), 2000))
		}
	}
	compare("after a restart on the crashed state dir and SIGTERM")
	if !t.Failed() {
		t.Log("restart on the crashed state dirs, then SIGTERM: both hosts as before `petrel up`")
	}
}
