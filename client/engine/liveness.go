package engine

import (
	"context"
	"sync"
	"time"

	"petrel/internal/keys"
	"petrel/proto/signalpb"
)

// Peer liveness: whether a remote peer with a WireGuard session is still
// there, decided within seconds instead of WireGuard's minutes.
//
// WireGuard's timers (whitepaper §6; wireguard-go device/constants.go) set
// the bounds. A session is rekeyed after RekeyAfterTime (120 s) by the side
// that initiated it, on its next send; the responder rekeys only at
// RejectAfterTime - KeepaliveTimeout - RekeyTimeout (165 s); keys older
// than RejectAfterTime (180 s) are never used. So while traffic flows a
// live peer's handshake can legitimately be up to 180 s old, and only a
// handshake older than that (or none) says by itself that the session is
// gone. What reacts fast is WireGuard's own rule for a sent data packet: a
// live peer answers any data packet within KeepaliveTimeout (10 s), with a
// passive keepalive if it has nothing else to send, and WireGuard gives the
// session up ("retrying handshake because we stopped hearing back") when
// nothing authenticated arrived KeepaliveTimeout + RekeyTimeout (15 s)
// after a send. Idle, a live agent still sends its persistent keepalive
// every 25 s (peers.go), so total silence of keepalive + RekeyTimeout means
// it is gone whatever was sent.
//
// The engine hears a peer through WireGuard's receive counter (it counts
// authenticated packets only: data, keepalives, handshakes), polled every
// probeTick, and through the replies to its latency probes (probe.go),
// which are data packets and so also the stimulus for the 15 s rule. A peer
// is offline when:
//   - signal reported it unregistered (NOT_CONNECTED on a message to it),
//     and nothing was heard from it since the report; or
//   - a probe went unanswered for silenceLimit, or echoLossLimit probes in
//     a row were lost (the policy allows the echo, so a live peer answers at
//     once); or
//   - nothing at all was heard for idleLimit; or
//   - its last handshake is older than RejectAfterTime.
// The first lost probe also asks signal whether the peer is still
// registered (a no-op Close message; a peer that ran `petrel down` or was
// killed has lost its signal stream, and the server's NOT_CONNECTED answer
// makes it offline at once). Anything heard from the peer, or a signal
// message from it, clears the verdict.

const (
	wgRejectAfterTime  = 180 * time.Second
	wgRekeyTimeout     = 5 * time.Second
	wgKeepaliveTimeout = 10 * time.Second

	// silenceLimit: a probe left unanswered this long means the peer is gone.
	silenceLimit = wgKeepaliveTimeout + wgRekeyTimeout
	// idleLimit: nothing heard this long means the peer is gone (a live
	// agent's persistent keepalive comes every keepalive).
	idleLimit = keepalive + wgRekeyTimeout
	// echoLossLimit lost echoes in a row (each probeTimeout) mean the peer
	// is gone: a live peer answers an allowed echo at once.
	echoLossLimit = 3
)

// Offline reasons (PeerStatus.offline_reason).
const (
	OfflineSignal    = "not-on-signal"     // the signal server has no stream for it
	OfflineNoReply   = "no-reply"          // probes unanswered (silenceLimit or echoLossLimit)
	OfflineSilent    = "silent"            // nothing heard for idleLimit
	OfflineHandshake = "handshake-expired" // last handshake older than RejectAfterTime
)

// liveState is one remote's liveness bookkeeping. The probe loop feeds it
// (observe, sent, answered, lost); signal callbacks report and clear; Status
// reads the verdict.
type liveState struct {
	mu       sync.Mutex
	rx       uint64    // WireGuard's receive counter at the last poll
	polledAt time.Time // last poll (zero: none yet)
	heard    time.Time // something authenticated arrived at or after this
	recent   time.Time // ... and at or before this (the poll that saw it)
	sentAt   time.Time // first probe sent since heard (zero: none outstanding)
	lost     int       // probes lost in a row since heard
	report   time.Time // signal said the peer is not registered (zero: no report)
	asked    time.Time // last presence query to signal
}

// observe records a poll of WireGuard's receive counter at now (have: the
// device has the peer). Growth means a packet arrived after the previous
// poll.
func (l *liveState) observe(now time.Time, rx uint64, have bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case !have:
		l.rx = 0
	case rx > l.rx && l.polledAt.IsZero():
		l.hearLocked(now, now) // first sight of a peer already talking
	case rx > l.rx:
		l.hearLocked(l.polledAt, now)
	case rx < l.rx: // the device re-created the peer
		l.hearLocked(now, now)
	}
	if have {
		l.rx = rx
	}
	l.polledAt = now
}

// hearLocked records a packet that arrived between after and before.
func (l *liveState) hearLocked(after, before time.Time) {
	if after.After(l.heard) {
		l.heard = after
	}
	if before.After(l.recent) {
		l.recent = before
	}
	if !l.sentAt.IsZero() && !l.heard.Before(l.sentAt) {
		l.sentAt, l.lost = time.Time{}, 0
	}
	if !l.report.IsZero() && l.heard.After(l.report) {
		l.report = time.Time{}
	}
}

// sent records a probe sent at now.
func (l *liveState) sent(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sentAt.IsZero() {
		l.sentAt = now
	}
}

// unsent withdraws the probe sent at at, which failed locally (no packet
// left, so no reply is owed).
func (l *liveState) unsent(at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sentAt.Equal(at) {
		l.sentAt, l.lost = time.Time{}, 0
	}
}

// answered records a probe's reply, received at now.
func (l *liveState) answered(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hearLocked(now, now)
}

// lostOne records a probe without reply: the probes lost in a row, and
// whether signal should be asked about the peer (at most once per
// silenceLimit).
func (l *liveState) lostOne(now time.Time) (lost int, ask bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sentAt.IsZero() { // answered meanwhile (the counter grew)
		return 0, false
	}
	l.lost++
	if now.Sub(l.asked) < silenceLimit {
		return l.lost, false
	}
	l.asked = now
	return l.lost, true
}

// reportOffline records that signal said the peer is not registered.
func (l *liveState) reportOffline(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.report = now
}

// clearReport forgets a report (the peer spoke on signal).
func (l *liveState) clearReport() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.report = time.Time{}
}

// verdict reports why the peer is offline at now ("" if it is not). hs is
// its last WireGuard handshake (zero: none).
func (l *liveState) verdict(now, hs time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case !l.report.IsZero():
		return OfflineSignal
	case !l.sentAt.IsZero() && (now.Sub(l.sentAt) >= silenceLimit || l.lost >= echoLossLimit):
		return OfflineNoReply
	case !l.recent.IsZero() && now.Sub(l.recent) >= idleLimit:
		return OfflineSilent
	case !hs.IsZero() && now.Sub(hs) >= wgRejectAfterTime:
		return OfflineHandshake
	}
	return ""
}

// pollLiveness feeds every remote's receive counter to its liveState.
func (e *Engine) pollLiveness(now time.Time, stats map[keys.Public]wgStats) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, r := range e.peers {
		s, ok := stats[k]
		r.live.observe(now, s.rx, ok)
	}
}

// askSignal sends pub a no-op Close (session 0 names no session): if the
// signal server has no stream for pub, it answers NOT_CONNECTED, which
// reports the peer offline (control.go).
func (e *Engine) askSignal(pub keys.Public) {
	if e.signal == nil {
		return
	}
	ctx, cancel := context.WithTimeout(e.ctx, probeTimeout)
	defer cancel()
	msg := &signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Close{Close: &signalpb.Close{Reason: "presence"}}}
	if err := e.signal.Send(ctx, pub, msg); err != nil && e.ctx.Err() == nil {
		e.log.Debug("presence query", "peer", pub.Short(), "err", err)
	}
}
