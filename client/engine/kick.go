package engine

import (
	"strings"
	"time"

	"petrel/internal/keys"
)

// Crossing handshakes. Both agents create the WireGuard peer when its
// first path appears, usually within the same millisecond (each learns the
// other's relay from the same offer/answer exchange). If both sent a
// handshake initiation then, the initiations would cross: each side
// answers the other's and drops the response to its own, both are left
// with an unconfirmed responder session, and WireGuard's rate limit (one
// initiation per RekeyTimeout, 5 s) delays the retry that fixes it.
// So only the side that wins the key comparison (the ICE-controlling side)
// creates the peer with its persistent keepalive, which initiates at once;
// the other side creates it without endpoint and keepalive, so it only
// answers, and gives WireGuard the path and the keepalive after
// keepaliveDelay (a fallback initiation if the winner's never arrived;
// peers.go). As a safety net the winner checks shortly after and, if no
// handshake has completed, re-creates the WireGuard peer (a fresh peer is
// not rate limited), which initiates again; the other side's rate limit
// keeps it from crossing again.

// kickDelays are the checks after the peer was created.
var kickDelays = []time.Duration{300 * time.Millisecond, 1200 * time.Millisecond, 2500 * time.Millisecond}

// keepaliveDelay is when the side that lost the comparison gives
// WireGuard the peer's current path and turns its persistent keepalive on
// (until then it only answers, peers.go).
const keepaliveDelay = time.Second

// initialKeepalive is the keepalive a new WireGuard peer for remote gets.
func (e *Engine) initialKeepalive(remote keys.Public) time.Duration {
	if e.initiates(remote) {
		return keepalive
	}
	return 0
}

// armHandshakeLocked starts the winner's checks or the other side's
// keepalive timer for a peer just created (r.devMu held).
func (e *Engine) armHandshakeLocked(pub keys.Public, r *remote) {
	if e.initiates(pub) {
		e.scheduleKickLocked(pub, r, 0)
		return
	}
	r.kick = e.afterFunc(keepaliveDelay, func() {
		r.devMu.Lock()
		defer r.devMu.Unlock()
		if r.removed || !r.configured || e.ctx.Err() != nil {
			return
		}
		info := e.infoOf(r)
		r.hold = false
		if err := e.dev.UpsertPeer(pub, e.allowedFor(r), r.endpoint, keepalive); err != nil {
			// The endpoint was checked when it was held; keep the
			// keepalive at least, the next path sets the endpoint.
			e.log.Warn("give WireGuard the peer's path", "peer", info.Name, "err", err)
			if err := e.dev.UpsertPeer(pub, e.allowedFor(r), "", keepalive); err != nil {
				e.log.Warn("turn keepalive on", "peer", info.Name, "err", err)
				return
			}
		}
		r.configured, r.keepaliveOn = true, true
	})
}

// initiates reports whether this agent breaks handshake ties with remote.
func (e *Engine) initiates(remote keys.Public) bool {
	return strings.Compare(e.pub.String(), remote.String()) > 0
}

// scheduleKickLocked arms check n for r (r.devMu held).
func (e *Engine) scheduleKickLocked(pub keys.Public, r *remote, n int) {
	if n >= len(kickDelays) || r.removed {
		return
	}
	r.kick = e.afterFunc(kickDelays[n], func() { e.kickHandshake(pub, r, n) })
}

// kickHandshake re-creates the WireGuard peer when no handshake has
// completed yet, then arms the next check.
func (e *Engine) kickHandshake(pub keys.Public, r *remote, n int) {
	if e.ctx.Err() != nil {
		return
	}
	if st, _, err := e.dev.PeerStats(pub); err != nil || !st.LastHandshake.IsZero() {
		return
	}
	r.devMu.Lock()
	defer r.devMu.Unlock()
	if r.removed || !r.configured || r.endpoint == "" {
		return
	}
	e.mu.Lock()
	info := r.info
	e.mu.Unlock()
	if err := e.dev.RemovePeer(pub); err != nil {
		e.log.Debug("re-create peer", "peer", info.Name, "err", err)
		return
	}
	if err := e.dev.UpsertPeer(pub, e.allowedFor(r), r.endpoint, keepalive); err != nil {
		e.log.Warn("re-create peer", "peer", info.Name, "err", err)
		r.configured, r.endpoint, r.keepaliveOn = false, "", false // the next endpoint creates it
		return
	}
	r.keepaliveOn = true
	e.log.Debug("no handshake yet; re-initiating", "peer", info.Name, "check", n+1)
	e.scheduleKickLocked(pub, r, n+1)
}

// timer is a scheduled function that can be cancelled (*time.Timer).
type timer interface{ Stop() bool }

// afterFunc runs f after d on its own goroutine: time.AfterFunc, or the
// test clock when one is set (Engine.after).
func (e *Engine) afterFunc(d time.Duration, f func()) timer {
	if e.after != nil {
		return e.after(d, f)
	}
	return time.AfterFunc(d, f)
}
