//go:build lab

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"petrel/lab"
)

// blockAt rejects traffic from h's LAN to dst at h's NAT router until the
// returned function is called.
func blockAt(ctx context.Context, h *lab.Host, dst string) (unblock func() error, err error) {
	table := "e2e_block"
	rules := fmt.Sprintf("table ip %s {\n chain block {\n  type filter hook forward priority -10; policy accept;\n  ip daddr %s reject\n }\n}\n", table, dst)
	if err := nftIn(ctx, h.RouterNS, rules, "-f", "-"); err != nil {
		return nil, err
	}
	return func() error { return nftIn(ctx, h.RouterNS, "", "delete", "table", "ip", table) }, nil
}

// Two hosts homed on different relay instances reach each other: each
// dials the other's home as a foreign relay, found by instance name
// through the lab DNS.
func TestForeignRelayInstances(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	a, err := c.NewAgentHost(ctx, "a", lab.Symmetric)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.NewAgentHost(ctx, "b", lab.Symmetric)
	if err != nil {
		t.Fatal(err)
	}
	eu, us := RelayInstanceURL(0), RelayInstanceURL(1)
	// Management advertises only the pool root: steer a's home to eu-1 and
	// b's to us-1 by blocking the other instance until the homes are set.
	unA, err := blockAt(ctx, a.Host, lab.RelayUSAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	unB, err := blockAt(ctx, b.Host, lab.RelayEUAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		ag   *Agent
		home string
		un   func() error
	}{{a, eu, unA}, {b, us, unB}} {
		if err := x.ag.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := x.ag.WaitStatus(ctx, 60*time.Second, "home relay "+x.home, func(s *Status) bool {
			return s.Relay.Connected && s.Relay.HomeURL == x.home
		}); err != nil {
			t.Fatal(err)
		}
		if err := x.un(); err != nil {
			t.Fatal(err)
		}
	}
	sa, err := a.WaitPeerPath(ctx, 90*time.Second, "b", "relay")
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.WaitPeerPath(ctx, 90*time.Second, "a", "relay")
	if err != nil {
		t.Fatal(err)
	}
	pingAndTransfer(t, a, b, sa, sb)
	sa, _ = a.Status(ctx)
	sb, _ = b.Status(ctx)
	if sa.Relay.HomeURL != eu || sb.Relay.HomeURL != us {
		t.Errorf("homes moved: a %s, b %s", sa.Relay.HomeURL, sb.Relay.HomeURL)
	}
	if got := sa.Peer("b").RelayURL; got != us {
		t.Errorf("a reaches b through %q, want b's home %s", got, us)
	}
	if got := sb.Peer("a").RelayURL; got != eu {
		t.Errorf("b reaches a through %q, want a's home %s", got, eu)
	}
	t.Logf("a (home %s) → b via %s; b (home %s) → a via %s", sa.Relay.HomeURL, sa.Peer("b").RelayURL,
		sb.Relay.HomeURL, sb.Peer("a").RelayURL)
}
