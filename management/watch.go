package management

import (
	"context"
	"sync"
	"time"
)

// PeerEvent is a change of a peer's live status: its Sync stream opened
// (Connected) or ended; or, with Paths, a change of the paths the peer
// reports to its peers (ReportPeers: read them with Connectivity). Resync (with the other fields zero) means events
// were dropped because the subscriber fell behind: re-read the status of
// every peer (PeerStatus) instead of trusting what was seen so far.
type PeerEvent struct {
	AccountID string
	PeerID    string
	Connected bool
	// Removed: the peer was deleted while connected.
	Removed bool
	// Paths: the peer's path report changed (Connected says nothing then).
	Paths  bool
	At     time.Time
	Resync bool
}

// peerWatchBuffer is each subscriber's queue; past it the queue is
// replaced by one Resync event.
const peerWatchBuffer = 256

// WatchPeers subscribes to peer status changes of every account (the
// caller filters by AccountID). Events of one peer arrive in order. The
// channel is closed when ctx ends or the service stops. The hub never
// waits for a subscriber: one that falls peerWatchBuffer events behind
// loses its queue and receives a single Resync event instead.
func (s *Service) WatchPeers(ctx context.Context) <-chan PeerEvent {
	sub := s.hub.watch.subscribe(peerWatchBuffer)
	go func() {
		select {
		case <-ctx.Done():
		case <-s.stopCh:
		}
		s.hub.watch.unsubscribe(sub)
	}()
	return sub.ch
}

// peerWatchers fans hub status changes out to WatchPeers subscribers.
// publish is called by the hub under its lock, so it never blocks.
type peerWatchers struct {
	mu   sync.Mutex
	subs map[*peerWatch]struct{}
	// paths holds the peers' path reports (reports.go); a status event
	// drops the peer's report.
	paths pathReports
}

type peerWatch struct {
	ch     chan PeerEvent // closed by unsubscribe, under mu
	closed bool
}

func (w *peerWatchers) subscribe(n int) *peerWatch {
	sub := &peerWatch{ch: make(chan PeerEvent, n)}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.subs == nil {
		w.subs = map[*peerWatch]struct{}{}
	}
	w.subs[sub] = struct{}{}
	return sub
}

func (w *peerWatchers) unsubscribe(sub *peerWatch) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.subs, sub)
	if !sub.closed {
		sub.closed = true
		close(sub.ch)
	}
}

// publish hands ev to every subscriber without waiting. A full queue is
// emptied and gets a Resync event: its reader missed something anyway,
// and one Resync tells it so more usefully than the oldest events would.
func (w *peerWatchers) publish(ev PeerEvent) {
	w.paths.statusChanged(ev)
	w.mu.Lock()
	defer w.mu.Unlock()
	for sub := range w.subs {
		select {
		case sub.ch <- ev:
			continue
		default:
		}
	drain:
		for {
			select {
			case <-sub.ch:
			default:
				break drain
			}
		}
		// Only publish sends, under mu, so the emptied queue has room.
		sub.ch <- PeerEvent{Resync: true, At: ev.At}
	}
}
