package peer

import (
	"net"
	"strconv"
	"time"

	"github.com/pion/ice/v4"

	"petrel/proto/signalpb"
)

// OnSignal handles a message from the remote peer.
func (c *Conn) OnSignal(msg *signalpb.PeerMessage) {
	switch m := msg.GetKind().(type) {
	case *signalpb.PeerMessage_Offer:
		o := m.Offer
		c.onCredentials(o.SessionId, o.IceUfrag, o.IcePwd, o.RelayInstanceUrl, o.Candidates, true)
	case *signalpb.PeerMessage_Answer:
		a := m.Answer
		c.onCredentials(a.SessionId, a.IceUfrag, a.IcePwd, a.RelayInstanceUrl, a.Candidates, false)
	case *signalpb.PeerMessage_Candidate:
		c.onCandidate(m.Candidate.SessionId, m.Candidate.Candidate)
	case *signalpb.PeerMessage_Close:
		if m.Close.SessionId == 0 {
			return // names no session: the remote's presence query (engine liveness)
		}
		c.mu.Lock()
		if c.remoteSess == m.Close.SessionId {
			c.remoteSess = 0
		}
		c.mu.Unlock()
	}
}

func (c *Conn) onCredentials(remoteID uint64, ufrag, pwd, relayURL string, cands []string, offer bool) {
	if remoteID == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.signalOK = true
	if relayURL != "" && relayURL != c.remoteRelay {
		c.remoteRelay = relayURL
		c.useRelayLocked(c.reasonOrPending())
	}
	if remoteID == c.remoteSess && c.session != nil {
		if offer {
			c.sendLocked(c.offerLocked(true)) // re-answer a repeated offer
		}
		return
	}
	// (A session that failed is gone while the remote may still repeat
	// the offer it was bound to: that offer starts a fresh session.)
	if !offer && c.session != nil && c.session.bound {
		return // answers never restart a session
	}
	if c.session == nil || c.session.bound {
		old := c.session
		c.session = nil
		if old != nil {
			go old.close()
		}
		if err := c.newSessionLocked(); err != nil {
			c.log.Warn("restart ICE session", "err", err)
			c.scheduleRetryLocked()
			return
		}
	}
	s := c.session
	s.bound = true
	c.remoteSess = remoteID
	c.log.Debug("ICE session bound", "remote_session", remoteID, "offer", offer, "candidates", len(cands))
	if offer {
		c.sendLocked(c.offerLocked(true))
	}
	if s.agent == nil {
		return // relay only
	}
	c.startICELocked(s, ufrag, pwd, append(cands, c.pendingCands...))
	c.pendingCands = nil
}

func (c *Conn) reasonOrPending() string {
	if c.cfg.ForceRelay {
		return ReasonForced
	}
	if c.reason == "" {
		return ReasonICEPending
	}
	return c.reason
}

func (c *Conn) startICELocked(s *session, ufrag, pwd string, cands []string) {
	s.started = true
	for _, raw := range cands {
		c.addCandidateLocked(s, raw)
	}
	var err error
	if c.controlling() {
		_, err = s.agent.StartDial(ufrag, pwd)
	} else {
		_, err = s.agent.StartAccept(ufrag, pwd)
	}
	if err != nil {
		c.log.Warn("start ICE", "err", err)
		s.started = false
		c.reason = ReasonICEFailed
		c.scheduleRetryLocked()
		return
	}
	if err := s.agent.GatherCandidates(); err != nil {
		c.log.Warn("gather candidates", "err", err)
	}
}

func (c *Conn) onCandidate(sessID uint64, raw string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.session == nil || c.session.agent == nil {
		return
	}
	if sessID != c.remoteSess {
		if c.remoteSess == 0 && len(c.pendingCands) < 64 {
			c.pendingCands = append(c.pendingCands, raw)
		}
		return
	}
	c.addCandidateLocked(c.session, raw)
}

func (c *Conn) addCandidateLocked(s *session, raw string) {
	cand, err := ice.UnmarshalCandidate(raw)
	if err != nil {
		c.log.Debug("bad remote candidate", "err", err)
		return
	}
	if !c.keepCandidate(cand) {
		c.log.Debug("ignoring remote candidate inside the overlay", "candidate", raw)
		return
	}
	c.nat.observe(cand, true)
	if err := s.agent.AddRemoteCandidate(cand); err != nil {
		c.log.Debug("add remote candidate", "err", err)
	}
}

func (c *Conn) onSelected(s *session, local, remote ice.Candidate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.session != s || local == nil || remote == nil {
		return
	}
	c.localCand = candString(local)
	c.remoteCand = candString(remote)
	addr := net.JoinHostPort(remote.Address(), strconv.Itoa(remote.Port()))
	if err := c.cfg.Endpoints.SetEndpoint(c.cfg.Remote, c.cfg.DirectEndpoint(addr)); err != nil {
		c.log.Warn("set direct endpoint", "err", err)
		return
	}
	if c.path != PathDirect {
		c.log.Info("direct path up", "local", c.localCand, "remote", c.remoteCand)
	}
	c.path = PathDirect
	c.reason = ""
	c.retry.Reset()
}

func candString(cand ice.Candidate) string {
	return cand.Type().String() + " " + net.JoinHostPort(cand.Address(), strconv.Itoa(cand.Port()))
}

func (c *Conn) onICEState(s *session, st ice.ConnectionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.session != s {
		return
	}
	c.log.Debug("ICE state", "state", st.String())
	switch st {
	case ice.ConnectionStateFailed, ice.ConnectionStateDisconnected, ice.ConnectionStateClosed:
		reason := ReasonICEFailed
		if c.path == PathDirect {
			reason = ReasonLost
		} else if c.nat.symmetric() {
			reason = ReasonSymmetricNAT
		} else if c.localCand == "" {
			reason = ReasonICETimeout
		}
		c.localCand, c.remoteCand = "", ""
		c.useRelayLocked(reason)
		if st != ice.ConnectionStateClosed {
			// Drop this session and retry with a fresh one after a backoff.
			c.session = nil
			go s.close()
			c.scheduleRetryLocked()
		}
	}
}

// useRelayLocked points WireGuard at the remote's relay instance.
func (c *Conn) useRelayLocked(reason string) {
	c.reason = reason
	if c.path == PathDirect && reason == ReasonICEPending {
		return // keep the working direct path while renegotiating
	}
	if c.remoteRelay == "" || c.cfg.RelayEndpoint == nil || !c.homeUpLocked() {
		// Both home relays must be known: the remote answers through
		// ours, and a send before our home connection is up would dial
		// the remote's instance as a foreign relay, a second connection
		// with our key that the relay resolves by dropping one of them.
		// RelayChanged retries when our home connects.
		c.path = PathNone
		return
	}
	if err := c.cfg.Endpoints.SetEndpoint(c.cfg.Remote, c.cfg.RelayEndpoint(c.cfg.Remote, c.remoteRelay)); err != nil {
		c.log.Warn("set relay endpoint", "err", err)
		return
	}
	if c.path != PathRelay {
		c.log.Info("using relay", "relay", c.remoteRelay, "reason", reason)
	}
	c.path = PathRelay
}

// homeUpLocked reports whether this agent's home relay is connected.
func (c *Conn) homeUpLocked() bool {
	return c.cfg.RelayHome == nil || c.cfg.RelayHome() != ""
}

// scheduleRetryLocked starts a new ICE session after a backoff (the guard).
func (c *Conn) scheduleRetryLocked() {
	if c.closed || c.cfg.ForceRelay {
		return
	}
	if c.retryTimer != nil {
		c.retryTimer.Stop()
	}
	d := c.retry.Next()
	c.log.Debug("ICE retry scheduled", "in", d.Round(time.Millisecond))
	c.retryTimer = time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.retryNowLocked()
	})
}

// retryNowLocked is the guard's retry: a new ICE session and offer, unless
// the direct path is up or a session is already checking.
func (c *Conn) retryNowLocked() {
	if c.closed || (c.session != nil && c.path == PathDirect) {
		return
	}
	if s := c.session; s != nil && s.bound && s.started {
		// Both sides retry on their own timers: the remote's retry
		// got here first and this session is checking. Replacing it
		// would make the remote replace its own too (glare); its
		// Failed state schedules the next retry.
		c.log.Debug("ICE retry skipped: a session is checking")
		return
	}
	if c.session != nil {
		old := c.session
		c.session = nil
		go old.close()
	}
	if err := c.newSessionLocked(); err != nil {
		c.log.Warn("retry ICE session", "err", err)
		c.scheduleRetryLocked()
		return
	}
	c.sendOfferLocked()
}

// SignalConnected tells the Conn that the signal connection is (re)established:
// an offer sent while it was down was lost, so an unanswered one goes out
// again now instead of at the next resend (which backs off from 1 s).
func (c *Conn) SignalConnected() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.session == nil || c.session.bound {
		return
	}
	c.sendLocked(c.offerLocked(false))
}

// RelayChanged tells the Conn that this agent's home relay changed, so the
// remote learns the new instance (re-offer).
func (c *Conn) RelayChanged() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if c.path == PathNone && c.remoteRelay != "" {
		c.useRelayLocked(c.reasonOrPending())
	}
	if c.session == nil {
		return
	}
	if c.session.bound {
		c.sendLocked(c.offerLocked(true))
	} else {
		c.sendLocked(c.offerLocked(false))
	}
}
