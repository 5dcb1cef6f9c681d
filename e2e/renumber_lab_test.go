//go:build lab

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"petrel/lab"
)

// A's NAT router gets a new public address (ISP renumbering, a laptop on
// another network): a's TCP connections to management, signal and the
// relay and both sides' direct-path mappings die. The agents reconnect,
// traffic flows again in both directions, and the pair gets back onto a
// direct path through the new mapping.
func TestRecoversAfterPublicAddressChange(t *testing.T) {
	c := newCluster(t)
	a, b, sa, sb := pair(t, c, lab.EIM, lab.EIM, "p2p", "--log-level", "debug")
	ctx := context.Background()
	if err := a.WaitPing(ctx, sb.OverlayIP(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	old := a.Host.PublicAddr
	next, err := a.Host.ChangePublicAddr()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a's public address %s -> %s", old, next)
	start := time.Now()
	if err := a.WaitPing(ctx, sb.OverlayIP(), 90*time.Second); err != nil {
		t.Fatalf("a -> b after renumbering: %v", err)
	}
	t.Logf("a -> b answers again after %v", time.Since(start).Round(time.Millisecond))
	if err := b.WaitPing(ctx, sa.OverlayIP(), 90*time.Second); err != nil {
		t.Fatalf("b -> a after renumbering: %v", err)
	}
	st, err := a.WaitStatus(ctx, 90*time.Second, "a direct path to b not through the old address", func(s *Status) bool {
		p := s.Peer("b")
		return p != nil && p.Path == "p2p" && !strings.Contains(p.LocalCandidate, old.String())
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a on a direct path to b again after %v (local candidate %s)", time.Since(start).Round(time.Millisecond), st.Peer("b").LocalCandidate)
}
