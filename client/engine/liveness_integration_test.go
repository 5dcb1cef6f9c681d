package engine_test

import (
	"fmt"
	"testing"
	"time"

	"petrel/client/engine"
	"petrel/proto/daemonpb"
)

// peerStatus is agent e's view of the named peer (nil if it has none).
func peerStatus(e *engine.Engine, name string) *daemonpb.PeerStatus {
	for _, p := range e.Status().Peers {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func describePeer(p *daemonpb.PeerStatus) string {
	if p == nil {
		return "absent"
	}
	return fmt.Sprintf("%s %s reason=%q latency=%.3fms age=%ds", p.Status, p.Path, p.OfflineReason, p.LatencyMs, p.LatencyAgeS)
}

// Three real agents (one relayed) with a real server, in-process:
// connected peers get a measured latency on both paths; a peer that
// vanishes without a word (its data plane black-holed, its signal stream
// up) is shown offline because probes went unanswered; a peer that stops
// cleanly is shown offline because signal no longer has it; a peer that
// comes back is shown connected again. The deadlines are generous; the
// real delays are logged.
func TestPeerLiveness(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	m := newMesh(t)
	a := m.addAgent("alpha")
	b := m.addAgent("bravo")
	c := m.addAgentWith("charlie", func(cfg *engine.Config) { cfg.ForceRelay = true })
	waitFor(t, "alpha: bravo p2p, charlie relayed", 90*time.Second, func() (bool, string) {
		pb, pc := peerStatus(a, "bravo"), peerStatus(a, "charlie")
		ok := pb != nil && pb.Status == "connected" && pb.Path == "p2p" &&
			pc != nil && pc.Status == "connected" && pc.Path == "relay"
		return ok, describePeer(pb) + " / " + describePeer(pc)
	})

	// Latency on both paths, measured through the tunnel, with its age.
	for _, name := range []string{"bravo", "charlie"} {
		waitFor(t, name+" latency", 60*time.Second, func() (bool, string) {
			p := peerStatus(a, name)
			return p != nil && p.LatencyMs > 0, describePeer(p)
		})
		p := peerStatus(a, name)
		t.Logf("alpha -> %s over %s: latency %.3f ms, measured %d s ago", name, p.Path, p.LatencyMs, p.LatencyAgeS)
		if p.LatencyAgeS > 10 { // latencyMaxAge: older is never shown
			t.Errorf("%s: latency %d s old shown", name, p.LatencyAgeS)
		}
	}

	// Bravo vanishes without telling anyone: only probes can notice.
	b.Blackhole(true)
	start := time.Now()
	waitFor(t, "bravo offline", 90*time.Second, func() (bool, string) {
		p := peerStatus(a, "bravo")
		return p != nil && p.Status == "offline", describePeer(p)
	})
	t.Logf("abrupt stop (p2p peer): alpha showed bravo offline after %v", time.Since(start).Round(100*time.Millisecond))
	if p := peerStatus(a, "bravo"); p.OfflineReason != engine.OfflineNoReply || p.LatencyMs != 0 {
		t.Errorf("bravo: %s; want offline for %q (signal still has it), no latency", describePeer(p), engine.OfflineNoReply)
	}
	if p := peerStatus(a, "charlie"); p.Status != "connected" {
		t.Errorf("charlie: %s; want connected (untouched)", describePeer(p))
	}

	// Charlie runs `down`: signal drops its stream. Alpha does not retry
	// ICE towards it often by now (backoff), so the presence query tells.
	c.Stop()
	start = time.Now()
	waitFor(t, "charlie offline", 90*time.Second, func() (bool, string) {
		p := peerStatus(a, "charlie")
		return p != nil && p.Status == "offline", describePeer(p)
	})
	t.Logf("clean stop (relayed peer): alpha showed charlie offline after %v", time.Since(start).Round(100*time.Millisecond))
	if p := peerStatus(a, "charlie"); p.OfflineReason != engine.OfflineSignal {
		t.Errorf("charlie: %s; want offline for %q", describePeer(p), engine.OfflineSignal)
	}

	// Bravo comes back.
	b.Blackhole(false)
	start = time.Now()
	waitFor(t, "bravo back", 90*time.Second, func() (bool, string) {
		p := peerStatus(a, "bravo")
		return p != nil && p.Status == "connected", describePeer(p)
	})
	t.Logf("bravo shown connected again after %v", time.Since(start).Round(100*time.Millisecond))
}
