package peer

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/ice/v4"
)

func TestCandidatesInsideOverlayAreDropped(t *testing.T) {
	c := New(Config{Overlay: netip.MustParsePrefix("100.64.0.0/16")})
	none := New(Config{})
	for _, tc := range []struct {
		cand string
		keep bool
	}{
		{"candidate:1 1 udp 2130706431 100.64.0.1 35335 typ host", false},
		{"candidate:1 1 udp 2130706431 100.64.255.254 1 typ host", false},
		{"candidate:1 1 udp 2130706431 192.168.1.2 35335 typ host", true},
		{"candidate:1 1 udp 1694498815 203.0.113.101 53789 typ srflx raddr 0.0.0.0 rport 0", true},
		{"candidate:1 1 udp 2130706431 100.65.0.1 35335 typ host", true},
		{"candidate:1 1 udp 2130706431 ::ffff:100.64.0.9 35335 typ host", false},
	} {
		cand, err := ice.UnmarshalCandidate(tc.cand)
		if err != nil {
			t.Fatalf("%s: %v", tc.cand, err)
		}
		if got := c.keepCandidate(cand); got != tc.keep {
			t.Errorf("keepCandidate(%s) = %v, want %v", tc.cand, got, tc.keep)
		}
		if got := c.keepIP(net.ParseIP(cand.Address())); got != tc.keep {
			t.Errorf("keepIP(%s) = %v, want %v", cand.Address(), got, tc.keep)
		}
		if !none.keepCandidate(cand) {
			t.Errorf("without an overlay prefix %s was dropped", tc.cand)
		}
	}
}

// A remote candidate inside the overlay never reaches the ICE agent, so
// checks through the tunnel itself cannot select it.
func TestRemoteOverlayCandidateIgnored(t *testing.T) {
	c := New(Config{Overlay: netip.MustParsePrefix("100.64.0.0/16")})
	a, err := c.newAgent()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s := &session{agent: a}
	c.addCandidateLocked(s, "candidate:1 1 udp 2130706431 100.64.0.1 35335 typ host")
	c.addCandidateLocked(s, "candidate:2 1 udp 2130706431 192.168.1.2 35336 typ host")
	// AddRemoteCandidate is applied on the agent's loop: wait for the
	// accepted one, then check the other never arrived.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := a.GetRemoteCandidates()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 {
			if len(got) != 1 || got[0].Address() != "192.168.1.2" {
				t.Fatalf("remote candidates %v, want only 192.168.1.2", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the allowed remote candidate never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
