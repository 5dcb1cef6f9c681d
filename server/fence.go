package server

// Self-fencing for --ha (docs/adr-005-ha-control-plane.md): an instance
// that cannot reach PostgreSQL cannot hear the others' commits, write its
// agents' changes or record their signal presence, so after
// DefaultFenceAfter without a successful probe it closes its agents' Sync
// and signal streams and refuses new ones (Unavailable); through the load
// balancer they reconnect to an instance that can, and their cached maps
// keep tunnels up meanwhile. The first successful probe lifts the fence.

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the fence timers (tests shorten them through Config).
const (
	// DefaultFenceAfter is how long the database may be unreachable
	// before the instance fences itself; with probes every
	// fenceProbeEvery the fence is up within DefaultFenceAfter +
	// fenceProbeEvery of the last successful probe.
	DefaultFenceAfter = 4 * time.Second
	fenceProbeEvery   = 250 * time.Millisecond
	fenceProbeTimeout = time.Second
)

// fenced is what fencing acts on (management.Service, signal.Server).
type fenced interface{ SetFenced(bool) }

// fencer probes the database and fences or unfences its targets.
type fencer struct {
	probe   func(context.Context) error
	after   time.Duration
	targets []fenced
	log     *slog.Logger

	lastOK atomic.Int64 // unix nanos of the last successful probe
	on     bool         // loop goroutine only
	stopc  chan struct{}
	wg     sync.WaitGroup
	fences atomic.Int64 // times fenced (metrics, tests)
}

func newFencer(probe func(context.Context) error, after time.Duration, log *slog.Logger, targets ...fenced) *fencer {
	f := &fencer{probe: probe, after: after, targets: targets, log: log, stopc: make(chan struct{})}
	f.lastOK.Store(time.Now().UnixNano())
	return f
}

func (f *fencer) start() {
	f.wg.Add(1)
	go f.loop()
}

// stop ends the loop; targets keep their state (they are being stopped).
func (f *fencer) stop() {
	close(f.stopc)
	f.wg.Wait()
}

// loop starts a probe every fenceProbeEvery unless one is in flight, and
// decides on every tick, so a probe hanging on a frozen database does not
// delay the fence.
func (f *fencer) loop() {
	defer f.wg.Done()
	t := time.NewTicker(fenceProbeEvery)
	defer t.Stop()
	var inflight atomic.Bool
	var probes sync.WaitGroup
	defer probes.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		select {
		case <-f.stopc:
			return
		case <-t.C:
		}
		if inflight.CompareAndSwap(false, true) {
			probes.Add(1)
			go func() {
				defer probes.Done()
				defer inflight.Store(false)
				pctx, pcancel := context.WithTimeout(ctx, fenceProbeTimeout)
				err := f.probe(pctx)
				pcancel()
				if err == nil {
					f.lastOK.Store(time.Now().UnixNano())
				}
			}()
		}
		down := time.Since(time.Unix(0, f.lastOK.Load()))
		switch {
		case !f.on && down >= f.after:
			f.on = true
			f.fences.Add(1)
			f.log.Warn("database unreachable; fencing this instance", "for", down.Round(time.Millisecond))
			f.set(true)
		case f.on && down < f.after:
			f.on = false
			f.log.Info("database reachable again; unfencing this instance")
			f.set(false)
		}
	}
}

func (f *fencer) set(on bool) {
	for _, t := range f.targets {
		t.SetFenced(on)
	}
}
