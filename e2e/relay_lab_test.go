//go:build lab

package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"petrel/lab"
)

// relayReasons are the reasons a pair that cannot punch through may show.
// Behind a symmetric NAT both sides see it in the server-reflexive
// candidates (two STUN ports, two different mappings of one socket).
var relayReasons = []string{"symmetric-nat"}

// One host behind a symmetric NAT: the pair is relayed, traffic flows, and
// status says why.
func TestRelayedWithSymmetricNAT(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	a, b, sa, sb := pair(t, c, lab.EIM, lab.Symmetric, "relay")
	pingAndTransfer(t, a, b, sa, sb)
	for _, x := range []struct {
		ag   *Agent
		peer string
	}{{a, "b"}, {b, "a"}} {
		st, err := x.ag.WaitStatus(ctx, 90*time.Second, "a relay reason", func(s *Status) bool {
			p := s.Peer(x.peer)
			return p != nil && p.Path == "relay" && slices.Contains(relayReasons, p.RelayReason)
		})
		if err != nil {
			t.Fatal(err)
		}
		p := st.Peer(x.peer)
		t.Logf("%s sees %s relayed via %s because %s", x.ag.Name, x.peer, p.RelayURL, p.RelayReason)
		if p.RelayURL == "" {
			t.Errorf("%s: relayed peer %s has no relay_url", x.ag.Name, x.peer)
		}
	}
}

// 10% loss each way on one NAT: the pair still connects and a transfer
// completes.
func TestConnectsUnderLoss(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	a, err := c.NewAgentHost(ctx, "a", lab.EIM)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Host.SetLoss(10); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	b, err := c.NewAgent(ctx, "b", lab.EIM)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := a.WaitStatus(ctx, 90*time.Second, "peer b connected", peerConnected("b"))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.WaitStatus(ctx, 90*time.Second, "peer a connected", peerConnected("a"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("under 10%% loss: a sees b on %s", sa.Peer("b").Path)
	if err := a.WaitPing(ctx, sb.OverlayIP(), 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := Transfer(ctx, a, b, sb.OverlayIP(), 10<<20, 180*time.Second); err != nil {
		t.Fatal(err)
	}
}

func peerConnected(name string) func(*Status) bool {
	return func(s *Status) bool {
		p := s.Peer(name)
		return s.State == "connected" && p != nil && p.Status == "connected"
	}
}
