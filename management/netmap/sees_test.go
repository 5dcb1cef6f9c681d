package netmap

import (
	"fmt"
	"testing"
)

// TestSeesAgreesWithMap: for the random accounts of the property test's
// generator, and the accounts its changes lead to (snapshots from both
// Build and Next), Sees(a, b) holds exactly when Map(a) lists b — for every
// pair of peers of the account, unknown IDs included.
func TestSeesAgreesWithMap(t *testing.T) {
	seeds, steps := 60, 10
	if testing.Short() || raceEnabled {
		seeds = 15
	}
	var seen, unseen int
	check := func(where string, s *Snapshot) {
		t.Helper()
		ids := append(accountPeerIDs(s), "ghost")
		for _, a := range ids {
			holds := map[string]bool{}
			if m, err := s.Map(a); err == nil {
				byKey := map[string]string{}
				for id, p := range s.acct.Peers {
					byKey[p.PublicKey] = id
				}
				for _, rp := range m.GetPeers() {
					holds[byKey[rp.GetPublicKey()]] = true
				}
			}
			for _, b := range ids {
				if got := s.Sees(a, b); got != holds[b] {
					t.Fatalf("%s: Sees(%s, %s) = %v, Map(%s) holds it: %v", where, a, b, got, a, holds[b])
				}
				if holds[b] {
					seen++
				} else {
					unseen++
				}
			}
		}
	}
	for seed := range seeds {
		g := newGen(uint64(seed))
		prev := Build(g.a)
		check(fmt.Sprintf("seed %d", seed), prev)
		for step := range steps {
			var ch Change
			g.a = clone(g.a)
			for range 1 + g.r.IntN(3) {
				g.step(&ch)
			}
			next := prev.Next(g.a, ch)
			where := fmt.Sprintf("seed %d step %d", seed, step)
			check(where+" (Next)", next)
			check(where+" (Build)", Build(g.a))
			prev = next
		}
	}
	if seen == 0 || unseen == 0 {
		t.Fatalf("the accounts exercised one answer only: %d pairs seen, %d not", seen, unseen)
	}
}

// accountPeerIDs returns the IDs of every peer of s's account (disabled ones too).
func accountPeerIDs(s *Snapshot) []string {
	ids := make([]string, 0, len(s.acct.Peers))
	for id := range s.acct.Peers {
		ids = append(ids, id)
	}
	return ids
}
