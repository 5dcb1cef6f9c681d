//go:build lab

package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"petrel/lab"
)

// suspendFor is longer than the server's heartbeat and idle timeouts, so the
// control plane has given up on the stopped agent when it wakes.
const suspendFor = 45 * time.Second

// Agent a is frozen (SIGSTOP, as a laptop's lid closing) long enough for
// the control plane to drop its sessions, then resumed: both agents get
// back to each other, directly.
func TestRecoversAfterSuspend(t *testing.T) {
	c := newCluster(t)
	a, b, sa, sb := pair(t, c, lab.EIM, lab.EIM, "p2p", "--log-level", "debug")
	ctx := context.Background()
	if err := a.WaitPing(ctx, sb.OverlayIP(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := a.Proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(suspendFor)
	if err := a.Proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := b.WaitPing(ctx, sa.OverlayIP(), 90*time.Second); err != nil {
		t.Fatalf("b -> a after resume: %v", err)
	}
	t.Logf("b -> a answers again %v after resume", time.Since(start).Round(time.Millisecond))
	if err := a.WaitPing(ctx, sb.OverlayIP(), 90*time.Second); err != nil {
		t.Fatalf("a -> b after resume: %v", err)
	}
	st, err := a.WaitStatus(ctx, 90*time.Second, "connected, b on p2p", func(s *Status) bool {
		p := s.Peer("b")
		return s.State == "connected" && s.Management.Connected && s.Signal.Connected && s.Relay.Connected &&
			p != nil && p.Path == "p2p"
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a fully reconnected with b on p2p %v after resume (%s)", time.Since(start).Round(time.Millisecond), st.Peer("b").LocalCandidate)
}
