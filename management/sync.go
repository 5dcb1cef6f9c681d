package management

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"petrel/internal/keys"
	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/management/store"
	"petrel/proto/managementpb"
)

// hub is the registry of live Sync streams, one per peer, and of when each
// peer was last seen.
type hub struct {
	mu       sync.Mutex
	sessions map[string]*session // by peer ID
	lastSeen map[string]time.Time
	ctr      syncCounters // metrics.go
	watch    peerWatchers // WatchPeers subscribers (watch.go)
}

func newHub() *hub {
	return &hub{sessions: map[string]*session{}, lastSeen: map[string]time.Time{}}
}

// session is one live Sync stream. Mutations push deltas (under the
// account lock, so in order) in O(1); the stream's goroutine takes them. If
// several are pending when it wakes (a slow stream) it merges them into one
// delta, off the account lock. Past maxPending pending deltas the session
// is cut and the agent resyncs in full.
type session struct {
	peerID string
	wake   chan struct{} // cap 1: something is pending
	done   chan struct{} // closed when the session is cut
	once   sync.Once
	cause  error // set before done is closed
	ctr    *syncCounters

	accountID string // names the account in WatchPeers events

	// queries carries DNS tests (dnsquery.go) to the stream goroutine,
	// which sends each as a message with the next serial; nil when the
	// agent did not list CAPABILITY_DNS_QUERY.
	queries chan *managementpb.DNSQuery

	mu      sync.Mutex
	pending []*managementpb.NetworkMapDelta // guarded by mu

	// Owned by the stream goroutine. The map the agent has is base with the
	// deltas in since applied; it is needed only to merge, so it is folded
	// lazily (on a merge, or every foldEvery deltas to bound memory).
	base  *managementpb.NetworkMap
	since []*managementpb.NetworkMapDelta
}

// foldEvery bounds the deltas a session keeps unapplied.
const foldEvery = 64

func (s *session) close(cause error) {
	s.once.Do(func() {
		s.cause = cause
		close(s.done)
	})
}

// push queues d; past maxPending queued deltas the session is cut.
func (s *session) push(d *managementpb.NetworkMapDelta, maxPending int) {
	if d == nil {
		return
	}
	s.mu.Lock()
	if len(s.pending) >= maxPending {
		s.pending = nil
		s.mu.Unlock()
		s.ctr.cut.Add(1)
		s.close(Errorf(KindUnavailable, "sync stream too slow: %d updates pending; resync", maxPending))
		return
	}
	s.pending = append(s.pending, d)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take returns the pending deltas merged into one (nil if none, or if they
// cancel out) and records it as sent. Only the stream goroutine calls it.
func (s *session) take() *managementpb.NetworkMapDelta {
	s.mu.Lock()
	list := s.pending
	s.pending = nil
	s.mu.Unlock()
	var d *managementpb.NetworkMapDelta
	switch len(list) {
	case 0:
		return nil
	case 1:
		d = list[0]
	default:
		s.ctr.coalesced.Add(uint64(len(list) - 1))
		sent := s.sent()
		target := sent
		for _, x := range list {
			target = netmap.Apply(target, x) // Apply never mutates its inputs
		}
		if d = netmap.Diff(sent, target); d == nil {
			return nil
		}
	}
	s.since = append(s.since, d)
	if len(s.since) >= foldEvery {
		s.sent()
	}
	return d
}

// sent folds since into base and returns it.
func (s *session) sent() *managementpb.NetworkMap {
	for _, d := range s.since {
		s.base = netmap.Apply(s.base, d)
	}
	s.since = nil
	return s.base
}

// register makes sess the peer's stream and returns the one it replaces.
func (h *hub) register(sess *session, now time.Time) *session {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.sessions[sess.peerID]
	h.sessions[sess.peerID] = sess
	h.lastSeen[sess.peerID] = now
	h.watch.publish(PeerEvent{AccountID: sess.accountID, PeerID: sess.peerID, Connected: true, At: now})
	return old
}

// unregister removes sess if it is still the peer's stream.
func (h *hub) unregister(sess *session, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[sess.peerID] == sess {
		delete(h.sessions, sess.peerID)
		h.watch.publish(PeerEvent{AccountID: sess.accountID, PeerID: sess.peerID, At: now})
	}
	if now.After(h.lastSeen[sess.peerID]) {
		h.lastSeen[sess.peerID] = now
	}
}

func (h *hub) seen(peerID string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.After(h.lastSeen[peerID]) {
		h.lastSeen[peerID] = now
	}
}

// session returns the peer's live stream on this instance (nil if none).
func (h *hub) session(peerID string) *session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[peerID]
}

func (h *hub) status(peerID string) (bool, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[peerID] != nil, h.lastSeen[peerID]
}

// forget closes a deleted peer's stream and drops its status.
func (h *hub) forget(peerID string, cause error) {
	h.mu.Lock()
	sess := h.sessions[peerID]
	delete(h.sessions, peerID)
	delete(h.lastSeen, peerID)
	if sess != nil {
		h.watch.publish(PeerEvent{AccountID: sess.accountID, PeerID: peerID, Removed: true, At: time.Now().UTC()})
	}
	h.mu.Unlock()
	if sess != nil {
		sess.close(cause)
	}
}

func (h *hub) deliver(_ string, deltas map[string]*managementpb.NetworkMapDelta, maxMerged int) {
	if len(deltas) == 0 {
		return
	}
	type item struct {
		s *session
		d *managementpb.NetworkMapDelta
	}
	h.mu.Lock()
	items := make([]item, 0, len(deltas))
	for id, d := range deltas {
		if s := h.sessions[id]; s != nil {
			items = append(items, item{s, d})
		}
	}
	h.mu.Unlock()
	for _, it := range items {
		it.s.push(it.d, maxMerged)
	}
}

func (h *hub) closeAll(cause error) {
	h.mu.Lock()
	all := make([]*session, 0, len(h.sessions))
	for _, s := range h.sessions {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		s.close(cause)
	}
}

// Sync streams the peer's network map: first the full map with serial n —
// the stored account version the map reflects — and the server config,
// then deltas with serials n+1, n+2, … and server config
// updates (fresh relay tokens at 2/3 of their lifetime; such a message has
// the next serial and may carry no delta) and DNS tests (dnsquery.go: the
// next serial, nothing else). It blocks until ctx ends, the
// stream is cut (too slow, replaced by a newer Sync of the same peer, peer
// deleted, service stopping) or send fails, and returns why.
func (s *Service) Sync(ctx context.Context, peerKey keys.Public, req *managementpb.SyncRequest, send func(*managementpb.SyncResponse) error) error {
	if err := s.running(); err != nil {
		return err
	}
	ref, ok := s.lookupKeyFresh(ctx, peerKey)
	if !ok {
		return Errorf(KindPermission, "peer is not registered: log in first")
	}
	if m := req.GetMeta(); m != nil {
		if err := s.updateMeta(ctx, ref, m); err != nil {
			return err
		}
	}
	st, err := s.account(ref.accountID)
	if err != nil {
		return err
	}
	s.syncCatchUp(ctx, ref.accountID) // HA: no older map than another instance sent
	sess := &session{peerID: ref.peerID, accountID: ref.accountID, wake: make(chan struct{}, 1), done: make(chan struct{}), ctr: &s.hub.ctr}
	if slices.Contains(req.GetCapabilities(), managementpb.Capability_CAPABILITY_DNS_QUERY) {
		sess.queries = make(chan *managementpb.DNSQuery, maxDNSQueriesPerPeer)
	}
	st.mu.Lock()
	v := st.view()
	p := v.acct.Peers[ref.peerID]
	if p == nil {
		st.mu.Unlock()
		return Errorf(KindPermission, "peer was removed; log in again with a setup key")
	}
	if err := loginAllowed(v.acct, p, s.now()); err != nil || p.Disabled {
		st.mu.Unlock()
		if err == nil {
			err = Errorf(KindPermission, "peer is disabled; sign in again")
		}
		return err
	}
	full, err := v.snap.Map(ref.peerID)
	if err != nil {
		st.mu.Unlock()
		return &Error{Kind: KindInternal, Msg: "compute network map", Err: err}
	}
	sess.base = full
	old := s.hub.register(sess, s.now().UTC())
	st.mu.Unlock()
	s.touchOpened(ref.peerID) // HA: hajobs.go
	if old != nil {
		old.close(Errorf(KindUnavailable, "replaced by a newer sync stream of the same peer"))
	}
	if err := s.running(); err != nil { // Stop or a fence raced with registration
		sess.close(err)
	}
	defer func() { s.hub.unregister(sess, s.now().UTC()) }()
	// The full map's serial is the stored account version it reflects
	// (the same on every instance); later messages count on from it.
	serial := uint64(v.acct.Version)
	s.log.Debug("sync stream opened", "account", ref.accountID, "peer", ref.peerID, "serial", serial)
	if err := send(&managementpb.SyncResponse{Serial: serial, Full: full, ServerConfig: s.serverConfig(peerKey)}); err != nil {
		return err
	}
	var refresh <-chan time.Time
	if d := s.tokenRefresh(); d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		refresh = t.C
	}
	for {
		var resp *managementpb.SyncResponse
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sess.done:
			return sess.cause
		case <-sess.wake:
			d := sess.take()
			if d == nil {
				continue
			}
			resp = &managementpb.SyncResponse{Delta: d}
		case <-refresh:
			resp = &managementpb.SyncResponse{ServerConfig: s.serverConfig(peerKey)}
		case q := <-sess.queries: // a nil channel (no capability) never fires
			resp = &managementpb.SyncResponse{DnsQuery: q}
		}
		select { // a cut session wins over pending work
		case <-sess.done:
			return sess.cause
		default:
		}
		serial++
		resp.Serial = serial
		if err := send(resp); err != nil {
			return err
		}
	}
}

// updateMeta stores the meta a Sync request reports if it differs.
func (s *Service) updateMeta(ctx context.Context, ref peerRef, m *managementpb.PeerMeta) error {
	// Most streams report what is stored: answer that from memory, so
	// opening a stream takes no write lock (with HA a cluster-wide one,
	// after catching up: memory may hold what another instance replaced).
	s.syncCatchUp(ctx, ref.accountID)
	if st, err := s.account(ref.accountID); err == nil {
		if old := st.view().acct.Peers[ref.peerID]; old != nil && metaFrom(m, old.Meta.Hostname) == old.Meta {
			return nil
		}
	}
	return s.mutate(ctx, ref.accountID, "update peer meta", func(cur *model.Account) (*mutation, error) {
		old := cur.Peers[ref.peerID]
		if old == nil {
			return nil, Errorf(KindPermission, "peer was removed; log in again with a setup key")
		}
		meta := metaFrom(m, old.Meta.Hostname)
		if meta == old.Meta {
			return nil, nil
		}
		p := *old
		p.Meta = meta
		next := cloneAccount(cur)
		next.Peers[p.ID] = &p
		return &mutation{
			next:   next,
			change: netmap.Change{PeersChanged: []string{p.ID}},
			write:  func(tx store.Tx) error { return tx.Put(cur.ID, &p) },
		}, nil
	})
}

func (s *Service) tokenRefresh() time.Duration {
	if s.cfg.MintRelayToken == nil || len(s.cfg.Server.RelayURLs) == 0 {
		return 0
	}
	return s.cfg.Server.RelayTokenTTL * 2 / 3
}

// serverConfig builds the agent's view of the control plane, with a fresh
// relay token bound to peerKey.
func (s *Service) serverConfig(peerKey keys.Public) *managementpb.ServerConfig {
	si := s.cfg.Server
	sc := &managementpb.ServerConfig{
		StunUrls:  slices.Clone(si.STUNURLs),
		SignalUrl: si.SignalURL,
		Domains:   serverDomains(si),
	}
	if len(si.RelayURLs) > 0 {
		rc := &managementpb.RelayConfig{Urls: slices.Clone(si.RelayURLs)}
		if s.cfg.MintRelayToken != nil {
			exp := s.now().Add(si.RelayTokenTTL)
			rc.Token = s.cfg.MintRelayToken(peerKey, exp)
			rc.TokenExpiresUnix = exp.Unix()
		}
		sc.Relay = rc
	}
	return sc
}

// serverDomains lists the control-plane host names (IP literals omitted).
func serverDomains(si ServerInfo) *managementpb.ServerDomains {
	hosts := func(urls ...string) []string {
		var out []string
		for _, u := range urls {
			if h := hostOf(u); h != "" && !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
		return out
	}
	return &managementpb.ServerDomains{
		Management:     hosts(si.PublicURL),
		Signal:         hosts(si.SignalURL),
		RelayPoolRoots: hosts(si.RelayURLs...),
		Stun:           hosts(si.STUNURLs...),
	}
}

// hostOf extracts the DNS host name of a URL such as "http://h:1",
// "rel://h:1" or "stun:h:3478"; "" for IP literals and unparsable input.
func hostOf(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return ""
	}
	host := u.Hostname()
	if host == "" && u.Opaque != "" { // stun:host:port
		host = u.Opaque
		if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
			host = host[:i]
		}
		host = strings.Trim(host, "[]")
	}
	if i := strings.IndexByte(host, '?'); i >= 0 {
		host = host[:i]
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	return host
}

// PeerStatus reports whether the peer has a live Sync stream and when it
// was last seen (login, sync start or end).
func (s *Service) PeerStatus(accountID, peerID string) (connected bool, lastSeen time.Time) {
	connected, lastSeen = s.hub.status(peerID)
	if st, err := s.account(accountID); err == nil {
		if p := st.view().acct.Peers[peerID]; p != nil && p.LastSeen.After(lastSeen) {
			lastSeen = p.LastSeen
		}
	}
	if connected {
		lastSeen = s.now().UTC()
	}
	return connected, lastSeen
}

// janitor removes ephemeral peers that stayed disconnected too long and
// disables user peers whose login expired.
func (s *Service) janitor() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.JanitorInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopCh:
			return
		case <-t.C:
			if s.follow != nil {
				// The instances' tickers run nearly in step; a random
				// pause lets a different one win each slot's claim.
				slot := s.now().UnixNano() / int64(s.cfg.JanitorInterval)
				select {
				case <-s.stopCh:
					return
				case <-time.After(rand.N(s.cfg.JanitorInterval / 2)):
				}
				s.haHousekeeping(slot) // hajobs.go
				continue
			}
			s.collectEphemeral(nil)
			s.expireLogins()
		}
	}
}

// collectEphemeral removes ephemeral peers disconnected for EphemeralTTL.
// seen (HA) holds the last-seen times every instance recorded: a peer
// connected to another instance is not removed here.
func (s *Service) collectEphemeral(seen map[string]time.Time) {
	now := s.now()
	type victim struct{ account, peer string }
	var victims []victim
	s.mu.RLock()
	for id, st := range s.accounts {
		for _, p := range st.view().acct.Peers {
			if !p.Ephemeral {
				continue
			}
			connected, last := s.hub.status(p.ID)
			if connected {
				continue
			}
			last = latest(last, p.LastSeen, s.started, seen[p.ID])
			if now.Sub(last) >= s.cfg.EphemeralTTL {
				victims = append(victims, victim{id, p.ID})
			}
		}
	}
	s.mu.RUnlock()
	for _, v := range victims {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := s.deletePeer(ctx, v.account, v.peer, true)
		cancel()
		if err != nil && KindOf(err) != KindNotFound && KindOf(err) != KindPrecondition {
			s.log.Warn("remove ephemeral peer", "account", v.account, "peer", v.peer, "err", err)
			continue
		}
		if err == nil {
			s.log.Info("removed ephemeral peer", "account", v.account, "peer", v.peer)
		}
	}
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}
