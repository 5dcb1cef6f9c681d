package management

// Housekeeping with several instances (HA, docs/adr-005-ha-control-plane.md).
//
// Each instance knows only the Sync streams it holds, so with HA:
//   - every janitor tick, each instance records in the shared store when
//     its peers were last connected (peer_seen: one batched statement, no
//     account version, no notification);
//   - the janitor's work (ephemeral-peer cleanup, login expiry) is a
//     singleton job: for each time slot of JanitorInterval, only the
//     instance whose claim of the slot is first runs it (job_runs), so it
//     runs once per slot cluster-wide with no standing leader, and it
//     judges ephemeral peers by the last-seen time any instance recorded.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"slices"
	"time"
)

// janitorJob names the janitor in job_runs.
const janitorJob = "janitor"

// newInstanceID returns a random ID naming this process in job claims.
func newInstanceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// haHousekeeping is one janitor tick with HA: record last-seen times, then
// run the janitor if this instance wins the tick's slot.
func (s *Service) haHousekeeping(slot int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	feed := s.follow.cfg.Feed
	now := s.now().UTC()
	if ids := s.hub.seenSince(s.follow.touched); len(ids) > 0 {
		if err := feed.TouchSeen(ctx, ids); err != nil {
			s.log.Warn("record last-seen times", "err", err)
		} else {
			s.follow.touched = now
		}
	}
	won, err := feed.ClaimJob(ctx, janitorJob, slot, s.follow.instance)
	if err != nil {
		s.log.Warn("claim the janitor job", "err", err)
	}
	if !won {
		return
	}
	s.follow.janitorRuns.Add(1)
	ages, err := feed.SeenAges(ctx)
	if err != nil {
		s.log.Warn("janitor: read last-seen times; skipping the ephemeral-peer cleanup", "err", err)
	} else {
		seen := make(map[string]time.Time, len(ages))
		read := s.now().UTC()       // the ages are as of now, not of the tick
		for id, age := range ages { // the database's clock, made ours
			seen[id] = read.Add(-age)
		}
		s.catchUpAll(ctx)
		s.collectEphemeral(seen)
	}
	s.expireLogins()
}

// openedBatch is how long stream openings are gathered into one
// last-seen write: when an instance dies, its agents open streams on the
// others by the hundred within a second.
const openedBatch = 100 * time.Millisecond

// touchOpened (HA) records, within openedBatch, that a peer opened a Sync
// stream here, so another instance's janitor does not take a peer that
// just came back for one that stayed away. Openings are written in one
// statement per batch, off the streams' path.
func (s *Service) touchOpened(peerID string) {
	f := s.follow
	if f == nil {
		return
	}
	f.openMu.Lock()
	defer f.openMu.Unlock()
	if f.opened == nil {
		f.opened = map[string]struct{}{}
		// Not tracked by s.wg (a Sync may open while Stop waits): bounded
		// by the timeout and cut by Stop.
		time.AfterFunc(openedBatch, s.flushOpened)
	}
	f.opened[peerID] = struct{}{}
}

// flushOpened writes the gathered openings.
func (s *Service) flushOpened() {
	f := s.follow
	f.openMu.Lock()
	ids := slices.Collect(maps.Keys(f.opened))
	f.opened = nil
	f.openMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		select {
		case <-s.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := f.cfg.Feed.TouchSeen(ctx, ids); err != nil {
		s.log.Debug("record streams' openings", "peers", len(ids), "err", err)
	}
}

// JanitorRuns reports how many janitor slots this instance ran (HA; 0
// without HA).
func (s *Service) JanitorRuns() uint64 {
	if s.follow == nil {
		return 0
	}
	return s.follow.janitorRuns.Load()
}

// seenSince returns the peers connected now or disconnected after t.
func (h *hub) seenSince(t time.Time) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for id, at := range h.lastSeen {
		if h.sessions[id] != nil || at.After(t) {
			out = append(out, id)
		}
	}
	return out
}
