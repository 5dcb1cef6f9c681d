//go:build lab

package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"petrel/lab"
)

// Recovery scenarios: something breaks under a connected pair, then heals;
// the agents must get back to each other without being restarted. Each
// test logs how long recovery took (docs/e2e.md has the measurements).

const (
	suspendFor = 45 * time.Second // longer than the server's heartbeat and idle timeouts
	blackhole  = 30 * time.Second
	recoverIn  = 120 * time.Second // deadline, not a performance bound
)

// recoveryPair starts agents a and b (debug logs, kept on failure) on
// path and checks that a reaches b.
func recoveryPair(t *testing.T, ka, kb lab.NATKind, path string) (c *Cluster, a, b *Agent, sa, sb *Status) {
	t.Helper()
	c = newCluster(t)
	a, b, sa, sb = pair(t, c, ka, kb, path, "--log-level", "debug")
	if err := a.WaitPing(context.Background(), sb.OverlayIP(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return c, a, b, sa, sb
}

// expectRecovery is called as the fault heals: it waits until ping answers
// a -> b and b -> a and, with okCand, until a is connected to the control
// plane and sees b on a direct path whose local candidate satisfies it;
// it logs how long each took.
func expectRecovery(t *testing.T, a, b *Agent, sa, sb *Status, okCand func(string) bool) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	if err := a.WaitPing(ctx, sb.OverlayIP(), recoverIn); err != nil {
		t.Fatalf("a -> b: %v", err)
	}
	t.Logf("a -> b answers again %v after the fault healed", time.Since(start).Round(time.Millisecond))
	if err := b.WaitPing(ctx, sa.OverlayIP(), recoverIn); err != nil {
		t.Fatalf("b -> a: %v", err)
	}
	if okCand == nil {
		return
	}
	st, err := a.WaitStatus(ctx, recoverIn, "connected, b on p2p", func(s *Status) bool {
		p := s.Peer("b")
		return s.Management.Connected && s.Signal.Connected && s.Relay.Connected &&
			p != nil && p.Path == "p2p" && okCand(p.LocalCandidate)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a connected with b on p2p %v after the fault healed (local candidate %s)",
		time.Since(start).Round(time.Millisecond), st.Peer("b").LocalCandidate)
}

func anyCand(string) bool { return true }

// A's NAT router gets a new public address (ISP renumbering, a laptop on
// another network): a's TCP connections to management, signal and the
// relay and both sides' direct-path mappings die.
func TestRecoversAfterPublicAddressChange(t *testing.T) {
	_, a, b, sa, sb := recoveryPair(t, lab.EIM, lab.EIM, "p2p")
	old := a.Host.PublicAddr
	next, err := a.Host.ChangePublicAddr()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a's public address %s -> %s", old, next)
	expectRecovery(t, a, b, sa, sb, func(c string) bool { return !strings.Contains(c, old.String()) })
}

// Agent a is frozen (SIGSTOP, a laptop lid closing) long enough for the
// control plane to drop its sessions, then resumed. A peer that joins
// after the resume must reach a: a's management stream and signal work.
func TestRecoversAfterSuspend(t *testing.T) {
	c, a, b, sa, sb := recoveryPair(t, lab.EIM, lab.EIM, "p2p")
	if err := a.Proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(suspendFor)
	if err := a.Proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	expectRecovery(t, a, b, sa, sb, anyCand)
	ctx := context.Background()
	d, err := c.NewAgent(ctx, "d", lab.EIM, "--log-level", "debug")
	if err != nil {
		t.Fatal(err)
	}
	sd, err := d.WaitPeerPath(ctx, recoverIn, "a", "p2p")
	if err != nil {
		t.Fatalf("a peer joining after the resume: %v", err)
	}
	if err := a.WaitPing(ctx, sd.OverlayIP(), recoverIn); err != nil {
		t.Fatalf("a -> d (joined after the resume): %v", err)
	}
	t.Logf("a reaches d, which joined after the resume, %v after the resume", time.Since(start).Round(time.Millisecond))
}

// A's uplink drops every packet for 30 s (a dead Wi-Fi, a train tunnel),
// with no reset and no new address, then works again.
func TestRecoversAfterBlackhole(t *testing.T) {
	_, a, b, sa, sb := recoveryPair(t, lab.EIM, lab.EIM, "p2p")
	if err := a.Host.SetLoss(100); err != nil {
		t.Fatal(err)
	}
	stalled := time.Now()
	if out, err := a.Ping(context.Background(), sb.OverlayIP(), 2); err == nil {
		t.Fatalf("ping a -> b answered during the blackhole:\n%s", out)
	}
	time.Sleep(blackhole - time.Since(stalled))
	if err := a.Host.SetLoss(0); err != nil {
		t.Fatal(err)
	}
	expectRecovery(t, a, b, sa, sb, anyCand)
}

// The relay instance carrying a relayed pair crashes (SIGKILL) and comes
// back 3 s later.
func TestRecoversAfterRelayCrash(t *testing.T) {
	c, a, b, sa, sb := recoveryPair(t, lab.EIM, lab.Symmetric, "relay")
	idx := -1
	for i := range c.Relays {
		if RelayInstanceURL(i) == sa.Relay.HomeURL {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatalf("a's home relay %q is not a lab instance", sa.Relay.HomeURL)
	}
	if err := c.Relays[idx].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.Relays[idx].Wait()
	time.Sleep(3 * time.Second)
	if err := c.StartRelay(context.Background(), idx); err != nil {
		t.Fatal(err)
	}
	expectRecovery(t, a, b, sa, sb, nil)
	for _, ag := range []*Agent{a, b} {
		if _, err := ag.WaitStatus(context.Background(), recoverIn, "relay connected",
			func(s *Status) bool { return s.Relay.Connected }); err != nil {
			t.Fatalf("%s: %v", ag.Name, err)
		}
	}
}
