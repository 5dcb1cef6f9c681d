package management

import "sync/atomic"

// SyncStats is a snapshot of the Sync streams' counters, for metrics.
type SyncStats struct {
	Open      int    // live Sync streams
	Coalesced uint64 // deltas merged into a later one because their stream lagged
	Cut       uint64 // streams cut for lagging past Config.MaxCoalesced
	Peers     int    // registered peers, all accounts
}

// syncCounters are the hub's cumulative counters; sessions add to them.
type syncCounters struct {
	coalesced, cut atomic.Uint64
}

// SyncStats returns the current counters. Safe for concurrent use; it
// takes the hub's and the key index's locks briefly, no account lock.
func (s *Service) SyncStats() SyncStats {
	s.hub.mu.Lock()
	open := len(s.hub.sessions)
	s.hub.mu.Unlock()
	s.mu.RLock()
	peers := len(s.byKey)
	s.mu.RUnlock()
	return SyncStats{Open: open, Coalesced: s.hub.ctr.coalesced.Load(), Cut: s.hub.ctr.cut.Load(), Peers: peers}
}
