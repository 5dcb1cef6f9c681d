package engine

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"petrel/client/peer"
	"petrel/internal/keys"
)

// Latency probe. ICE measures a round trip only on a direct pair, so a
// relayed peer would show no latency. One goroutine per engine (probeLoop)
// pings every connected peer's overlay address at most once per
// probeInterval (jittered) with Device.Ping, at most probeParallel at a
// time, and keeps the last RTT with the path it was measured on; Status
// shows it when ICE has none and the path has not changed since.

const (
	probeInterval = 30 * time.Second // minimum spacing per peer
	probeJitter   = probeInterval / 4
	probeTimeout  = 2 * time.Second
	probeParallel = 4
	probeTick     = time.Second
	// probeRecheck is when a peer that was not connected is looked at again.
	probeRecheck = 3 * time.Second
	// probeFirstMax bounds the random delay of a peer's first probe.
	probeFirstMax = 2 * time.Second
)

// probeResult is the last successful probe of a peer.
type probeResult struct {
	rtt  time.Duration
	path peer.Path
}

// probeState is a remote's probe bookkeeping. next is owned by probeLoop;
// last is read by Status.
type probeState struct {
	next time.Time // zero: first probe not scheduled yet
	busy bool      // a probe is in flight
	last probeResult
	mu   sync.Mutex // guards busy and last
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
		e.probeDue(sem, &inflight)
	}
}

type probeTarget struct {
	pub keys.Public
	r   *remote
	ip  netip.Addr
}

// probeDue starts a probe for every connected peer whose time has come.
func (e *Engine) probeDue(sem chan struct{}, inflight *sync.WaitGroup) {
	now := time.Now()
	var due []probeTarget
	e.mu.Lock()
	for k, r := range e.peers {
		if now.Before(r.probe.next) {
			continue
		}
		if r.probe.next.IsZero() { // a new peer: spread first probes
			r.probe.next = now.Add(rand.N(probeFirstMax))
			continue
		}
		if ip, ok := overlayAddr(r); ok && e.probeAllowed(ip) { // a ping the policy drops measures nothing
			due = append(due, probeTarget{k, r, ip})
		}
	}
	e.mu.Unlock()
	if len(due) == 0 {
		return
	}
	stats := e.deviceStats()
	for _, p := range due {
		s, ok := stats[p.pub]
		cs := p.r.conn.Status()
		if !peerConnected(s, ok, cs) {
			p.r.probe.next = now.Add(probeRecheck)
			continue
		}
		p.r.probe.mu.Lock()
		busy := p.r.probe.busy
		p.r.probe.busy = true
		p.r.probe.mu.Unlock()
		if busy {
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
		p.r.probe.next = now.Add(probeInterval + rand.N(probeJitter))
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			defer func() { <-sem }()
			e.probeOne(p, cs.Path)
		}()
	}
}

// probeOne pings one peer and records the RTT on success.
func (e *Engine) probeOne(p probeTarget, path peer.Path) {
	ctx, cancel := context.WithTimeout(e.ctx, probeTimeout)
	defer cancel()
	rtt, err := e.dev.Ping(ctx, p.ip)
	p.r.probe.mu.Lock()
	defer p.r.probe.mu.Unlock()
	p.r.probe.busy = false
	if err != nil {
		if e.ctx.Err() == nil {
			e.log.Debug("latency probe", "peer", p.pub.Short(), "err", err)
		}
		return
	}
	if rtt <= 0 {
		rtt = time.Nanosecond
	}
	p.r.probe.last = probeResult{rtt: rtt, path: path}
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

// latencyMs is the latency Status shows: ICE's pair RTT when it has one,
// else, for a connected peer, the last probe taken on the current path (0
// if none).
func latencyMs(cs peer.Status, r *remote, connected bool) float64 {
	if cs.LatencyMs > 0 {
		return cs.LatencyMs
	}
	if !connected {
		return 0
	}
	if last, ok := r.probe.result(); ok && last.path == cs.Path {
		return float64(last.rtt) / float64(time.Millisecond)
	}
	return 0
}
