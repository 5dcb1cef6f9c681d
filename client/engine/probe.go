package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"petrel/client/peer"
	"petrel/internal/keys"
)

// Latency and liveness probe. One goroutine per engine (probeLoop) polls
// WireGuard's per-peer counters every probeTick (liveness.go) and pings the
// overlay address of every peer with a WireGuard session through the
// tunnel (Device.Ping) about every probeInterval, at most probeParallel at
// a time. The echo travels whatever path WireGuard uses, so a relayed
// peer is measured like a direct one, and the RTT is the tunnel's (ICE's
// pair RTT is the STUN consent check's, through the shared socket and the
// ICE agent's loop, not what traffic sees). The last RTT is kept with the
// path it was measured on and the time; Status shows it while the path is
// unchanged and it is younger than latencyMaxAge. A lost echo is retried
// at the next tick, so that a vanished peer is noticed after echoLossLimit
// probes, about 3 × (probeTimeout + probeTick) (liveness.go).

const (
	probeInterval = 5 * time.Second // spacing per peer
	probeJitter   = time.Second
	probeTimeout  = 2 * time.Second
	probeParallel = 32
	probeTick     = time.Second
	// probeFirstMax bounds the random delay of a peer's first probe.
	probeFirstMax = 2 * time.Second
	// latencyMaxAge: an older measurement is not shown (two intervals:
	// one lost probe does not blank it).
	latencyMaxAge = 2 * probeInterval
)

// probeResult is the last successful probe of a peer.
type probeResult struct {
	rtt  time.Duration
	path peer.Path
	at   time.Time // when the reply arrived
}

// probeState is a remote's probe bookkeeping: probeLoop schedules, the
// probe goroutines record, Status reads last.
type probeState struct {
	mu   sync.Mutex
	next time.Time // zero: first probe not scheduled yet
	busy bool      // a probe is in flight
	last probeResult
}

// due reports whether a probe is due at now; a new peer's first probe is
// scheduled instead, spread over probeFirstMax.
func (p *probeState) due(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next.IsZero() {
		p.next = now.Add(rand.N(probeFirstMax))
		return false
	}
	return !now.Before(p.next)
}

// start marks a probe in flight and schedules the next one after d; false
// if one is already in flight.
func (p *probeState) start(now time.Time, d time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy {
		return false
	}
	p.busy, p.next = true, now.Add(d)
	return true
}

func (p *probeState) setNext(t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next = t
}

func (p *probeState) result() (probeResult, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last, p.last.rtt > 0
}

// probeLoop runs until the engine stops; it returns after every probe it
// started has finished.
func (e *Engine) probeLoop() {
	defer e.probeWG.Done()
	var inflight sync.WaitGroup
	defer inflight.Wait()
	sem := make(chan struct{}, probeParallel)
	t := time.NewTicker(probeTick)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		stats := e.deviceStats()
		e.pollLiveness(now, stats)
		e.probeDue(now, stats, sem, &inflight)
	}
}

type probeTarget struct {
	pub keys.Public
	r   *remote
	ip  netip.Addr
}

// probeDue starts a probe for every peer with a WireGuard session and a
// path whose time has come.
func (e *Engine) probeDue(now time.Time, stats map[keys.Public]wgStats, sem chan struct{}, inflight *sync.WaitGroup) {
	var due []probeTarget
	e.mu.Lock()
	for k, r := range e.peers {
		if !r.probe.due(now) {
			continue
		}
		// A ping the policy drops measures nothing; liveness then rests
		// on the idle rule (liveness.go).
		if ip, ok := overlayAddr(r); ok && e.probeAllowed(ip) {
			due = append(due, probeTarget{k, r, ip})
		}
	}
	e.mu.Unlock()
	for _, p := range due {
		s, ok := stats[p.pub]
		cs := p.r.conn.Status()
		if !ok || s.handshake.IsZero() || cs.Path == peer.PathNone {
			p.r.probe.setNext(now.Add(probeTick)) // no session to probe yet
			continue
		}
		if !p.r.probe.start(now, probeInterval-probeJitter/2+rand.N(probeJitter)) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-e.ctx.Done():
			p.r.probe.mu.Lock()
			p.r.probe.busy = false
			p.r.probe.mu.Unlock()
			return
		}
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			defer func() { <-sem }()
			e.probeOne(p, cs.Path)
		}()
	}
}

// probeOne pings one peer, records the RTT on success and the loss on a
// timeout.
func (e *Engine) probeOne(p probeTarget, path peer.Path) {
	ctx, cancel := context.WithTimeout(e.ctx, probeTimeout)
	defer cancel()
	start := time.Now()
	p.r.live.sent(start)
	rtt, err := e.dev.Ping(ctx, p.ip)
	end := time.Now()
	p.r.probe.mu.Lock()
	p.r.probe.busy = false
	if err == nil {
		if rtt <= 0 {
			rtt = time.Nanosecond
		}
		p.r.probe.last = probeResult{rtt: rtt, path: path, at: end}
	}
	p.r.probe.mu.Unlock()
	switch {
	case err == nil:
		p.r.live.answered(end)
	case e.ctx.Err() != nil:
	case isTimeout(err):
		e.log.Debug("probe lost", "peer", p.pub.Short())
		lost, ask := p.r.live.lostOne(end)
		if lost < echoLossLimit {
			p.r.probe.setNext(end) // again at the next tick
		}
		if ask {
			e.askSignal(p.pub)
		}
	default: // failed here (no socket, no route): says nothing about the peer
		p.r.live.unsent(start)
		e.log.Debug("probe", "peer", p.pub.Short(), "err", err)
	}
}

// isTimeout reports whether a ping failed for want of a reply (the read
// deadline or the context's, whichever fired first).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// overlayAddr is the peer's overlay address (Engine.mu held).
func overlayAddr(r *remote) (netip.Addr, bool) {
	if r.info == nil || len(r.info.AllowedIps) == 0 {
		return netip.Addr{}, false
	}
	pfx, err := netip.ParsePrefix(r.info.AllowedIps[0])
	if err != nil {
		return netip.Addr{}, false
	}
	return pfx.Addr(), true
}

// latencyOf is the latency Status shows and its age: the last probe, if it
// was taken on the current path and is younger than latencyMaxAge (ok
// false otherwise).
func latencyOf(r *remote, path peer.Path, now time.Time) (rtt, age time.Duration, ok bool) {
	last, have := r.probe.result()
	if !have || last.path != path {
		return 0, 0, false
	}
	age = max(now.Sub(last.at), 0)
	if age > latencyMaxAge {
		return 0, 0, false
	}
	return last.rtt, age, true
}
