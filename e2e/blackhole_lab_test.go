//go:build lab

package e2e

import (
	"context"
	"testing"
	"time"

	"petrel/lab"
)

// blackhole is how long a's uplink drops everything.
const blackhole = 30 * time.Second

// A's uplink drops every packet for 30 s (a dead Wi-Fi, a train tunnel),
// with no reset or address change, then works again: the pair passes
// traffic again and gets back onto a direct path.
func TestRecoversAfterBlackhole(t *testing.T) {
	c := newCluster(t)
	a, b, sa, sb := pair(t, c, lab.EIM, lab.EIM, "p2p", "--log-level", "debug")
	ctx := context.Background()
	if err := a.WaitPing(ctx, sb.OverlayIP(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := a.Host.SetLoss(100); err != nil {
		t.Fatal(err)
	}
	stalled := time.Now()
	if out, err := a.Ping(ctx, sb.OverlayIP(), 2); err == nil {
		t.Fatalf("ping a -> b answered during the blackhole:\n%s", out)
	}
	time.Sleep(blackhole - time.Since(stalled))
	if err := a.Host.SetLoss(0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := a.WaitPing(ctx, sb.OverlayIP(), 120*time.Second); err != nil {
		t.Fatalf("a -> b after the blackhole: %v", err)
	}
	t.Logf("a -> b answers again %v after the uplink came back", time.Since(start).Round(time.Millisecond))
	if err := b.WaitPing(ctx, sa.OverlayIP(), 120*time.Second); err != nil {
		t.Fatalf("b -> a after the blackhole: %v", err)
	}
	st, err := a.WaitStatus(ctx, 120*time.Second, "connected, b on p2p", func(s *Status) bool {
		p := s.Peer("b")
		return s.Management.Connected && s.Signal.Connected && s.Relay.Connected && p != nil && p.Path == "p2p"
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a fully connected with b on p2p %v after the uplink came back (%s)", time.Since(start).Round(time.Millisecond), st.Peer("b").LocalCandidate)
}
