package engine

import (
	"testing"

	"petrel/internal/keys"
	"petrel/proto/managementpb"
)

func TestReportDiff(t *testing.T) {
	var k1, k2, k3 keys.Public
	k1[0], k2[0], k3[0] = 1, 2, 3
	p2p := pathEntry{state: managementpb.PeerPathState_PEER_PATH_STATE_P2P}
	relay := pathEntry{state: managementpb.PeerPathState_PEER_PATH_STATE_RELAYED, reason: "forced"}
	moved := pathEntry{state: managementpb.PeerPathState_PEER_PATH_STATE_P2P, local: "host 192.168.1.2:51820"}
	msgs := map[keys.Public]*managementpb.PeerPathReport{}
	for _, k := range []keys.Public{k1, k2, k3} {
		msgs[k] = &managementpb.PeerPathReport{PublicKey: k[:]}
	}
	sent := map[keys.Public]pathEntry{k1: p2p, k2: p2p}
	for _, c := range []struct {
		name          string
		cur           map[keys.Public]pathEntry
		full          bool
		peers, remove int // entries, removed keys; -1: no request
	}{
		{"unchanged", map[keys.Public]pathEntry{k1: p2p, k2: p2p}, false, -1, -1},
		{"unchanged but full", map[keys.Public]pathEntry{k1: p2p, k2: p2p}, true, 2, 0},
		{"one changed", map[keys.Public]pathEntry{k1: p2p, k2: relay}, false, 1, 0},
		{"candidates changed", map[keys.Public]pathEntry{k1: p2p, k2: moved}, false, 1, 0},
		{"one added, one gone", map[keys.Public]pathEntry{k1: p2p, k3: p2p}, false, 1, 1},
	} {
		req := reportDiff(sent, c.cur, msgs, c.full)
		if c.peers < 0 {
			if req != nil {
				t.Errorf("%s: request %v, want none", c.name, req)
			}
			continue
		}
		if req == nil || len(req.Peers) != c.peers || len(req.RemovedKeys) != c.remove || req.Full != c.full {
			t.Errorf("%s: request %v, want %d entries, %d removed, full %v", c.name, req, c.peers, c.remove, c.full)
		}
	}
}
