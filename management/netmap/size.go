package netmap

import (
	"slices"

	"google.golang.org/protobuf/proto"
)

// LargestMap returns the peer whose full network map is the largest encoded
// protobuf (and its size) among the peers a change can grow. Peers with the
// same view (group set) and no routes to serve get maps of nearly the same
// size, so when all is true one peer per view is encoded, plus every routing
// peer; otherwise only the given peers are. Cost: one map encoding per
// visited peer. An empty snapshot yields ("", 0).
func (s *Snapshot) LargestMap(all bool, peers []string) (peerID string, size int) {
	visit := func(e *peerEntry) {
		if n := proto.Size(s.mapOf(e)); n > size || peerID == "" {
			peerID, size = e.id, n
		}
	}
	if all {
		seen := map[string]bool{}
		for _, e := range s.sorted {
			if len(s.routerOf[e.id]) > 0 {
				visit(e)
				continue
			}
			if !seen[e.sig] {
				seen[e.sig] = true
				visit(e)
			}
		}
		return peerID, size
	}
	ids := slices.Clone(peers)
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if e := s.peers[id]; e != nil {
			visit(e)
		}
	}
	return peerID, size
}
