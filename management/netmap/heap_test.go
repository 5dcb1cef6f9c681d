package netmap

import (
	"fmt"
	"runtime"
	"testing"

	"petrel/management/model"
)

func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestChurnHeapBounded applies 10,000 changes (peer re-authentications that
// replace a peer's key and group membership toggles) through Next and
// Deltas, keeping only the newest snapshot as the service does, and checks
// that the live heap afterwards stays near the baseline: a snapshot must not
// keep the snapshots it was derived from alive (issue 12).
func TestChurnHeapBounded(t *testing.T) {
	a := newAcct()
	for i := range 50 {
		addPeer(a, fmt.Sprintf("p%02d", i), ipN(i+1), fmt.Sprintf("g%d", i%5))
	}
	a.Groups["toggle"] = &model.Group{ID: "toggle", Name: "toggle"}
	a.Policies["allow-all"] = policy("allow-all", accept("all", "all"))
	a.Policies["toggle"] = policy("toggle", accept("toggle", "g0"))
	snap := Build(a)
	runtime.KeepAlive(snap)
	base := liveHeap()

	const changes = 10_000
	for i := range changes {
		next := clone(a)
		var ch Change
		id := fmt.Sprintf("p%02d", i%50)
		if i%2 == 0 { // re-authentication: new key
			p := *next.Peers[id]
			p.PublicKey = fmt.Sprintf("key-%s-%d", id, i)
			next.Peers[id] = &p
			ch.PeersChanged = []string{id}
		} else { // membership toggle
			g := *next.Groups["toggle"]
			if len(g.PeerIDs) > 0 {
				g.PeerIDs = nil
			} else {
				g.PeerIDs = []string{id}
			}
			next.Groups["toggle"] = &g
			ch.Groups = []string{"toggle"}
		}
		ns := snap.Next(next, ch)
		_ = Deltas(snap, ns, ch)
		a, snap = next, ns
	}
	after := liveHeap()
	runtime.KeepAlive(snap)
	bound := 2*base + 20<<20
	t.Logf("live heap: baseline %.1f MB, after %d changes %.1f MB (bound %.1f MB)",
		mb(base), changes, mb(after), mb(bound))
	if after > bound {
		t.Fatalf("live heap %.1f MB after %d changes exceeds %.1f MB (baseline %.1f MB): old snapshots are kept alive",
			mb(after), changes, mb(bound), mb(base))
	}
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }
