//go:build lab

package e2e

import (
	"testing"

	"petrel/lab"
)

// Two hosts behind endpoint-independent NATs connect directly; ping and a
// 10 MB transfer go through the tunnel.
func TestDirectBetweenEIMHosts(t *testing.T) {
	c := newCluster(t)
	a, b, sa, sb := pair(t, c, lab.EIM, lab.EIM, "p2p")
	t.Logf("a: %s ↔ b: %s; a's candidates %s → %s", sa.OverlayIP(), sb.OverlayIP(),
		sa.Peer("b").LocalCandidate, sa.Peer("b").RemoteCandidate)
	pingAndTransfer(t, a, b, sa, sb)
}
