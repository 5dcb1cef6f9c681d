//go:build lab

package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"petrel/lab"
)

// The relay instance carrying a relayed pair crashes (SIGKILL) and comes
// back 3 s later: both agents reconnect to it and the pair passes traffic
// again, without the agents restarting.
func TestRecoversAfterRelayCrash(t *testing.T) {
	c := newCluster(t)
	a, b, sa, sb := pair(t, c, lab.EIM, lab.Symmetric, "relay", "--log-level", "debug")
	ctx := context.Background()
	if err := a.WaitPing(ctx, sb.OverlayIP(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
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
	if err := c.StartRelay(ctx, idx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := a.WaitPing(ctx, sb.OverlayIP(), 90*time.Second); err != nil {
		t.Fatalf("a -> b after the relay came back: %v", err)
	}
	t.Logf("a -> b answers again %v after the relay came back", time.Since(start).Round(time.Millisecond))
	if err := b.WaitPing(ctx, sa.OverlayIP(), 90*time.Second); err != nil {
		t.Fatalf("b -> a after the relay came back: %v", err)
	}
	for _, ag := range []*Agent{a, b} {
		if _, err := ag.WaitStatus(ctx, 60*time.Second, "relay connected", func(s *Status) bool { return s.Relay.Connected }); err != nil {
			t.Fatalf("%s: %v", ag.Name, err)
		}
	}
}
