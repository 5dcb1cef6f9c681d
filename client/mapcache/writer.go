package mapcache

import (
	"log/slog"
	"sync"
	"time"

	"petrel/internal/keys"
)

// Writer saves snapshots in the background, at most one write per
// interval: an update storm costs one write, not one per delta. Update
// hands it a function that builds the snapshot; the writer calls it on its
// own goroutine when the write is due, so the caller pays nothing per
// update. Close writes the pending snapshot and waits.
type Writer struct {
	path     string
	key      keys.Private
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	pending func() *Snapshot
	closed  bool
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	lastErr error
}

// NewWriter starts a writer for path.
func NewWriter(path string, key keys.Private, interval time.Duration, log *slog.Logger) *Writer {
	w := &Writer{path: path, key: key, interval: interval, log: log,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

// Update schedules a write of build's snapshot (replacing any pending one).
func (w *Writer) Update(build func() *Snapshot) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.pending = build
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *Writer) loop() {
	defer close(w.done)
	var last time.Time
	for {
		select {
		case <-w.kick:
		case <-w.stop:
			w.flush()
			return
		}
		if wait := w.interval - time.Since(last); !last.IsZero() && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-w.stop:
				t.Stop()
			}
		}
		w.flush()
		last = time.Now()
	}
}

// flush writes the pending snapshot, if any.
func (w *Writer) flush() {
	w.mu.Lock()
	build := w.pending
	w.pending = nil
	w.mu.Unlock()
	if build == nil {
		return
	}
	s := build()
	if s == nil {
		return
	}
	err := Save(w.path, s, w.key)
	w.mu.Lock()
	w.lastErr = err
	w.mu.Unlock()
	if err != nil {
		w.log.Warn("save map cache", "err", err)
	}
}

// Err is the result of the last write (nil before the first).
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// Close writes the pending snapshot, if any, and stops the writer.
// Idempotent.
func (w *Writer) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.done
}
