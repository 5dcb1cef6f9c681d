package management

import (
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"petrel/internal/keys"
	"petrel/internal/ratelimit"
	"petrel/proto/managementpb"
)

// Path reports (ReportPeers) feed the dashboard's connectivity matrix:
// each agent tells the server how it reaches each of its peers, the server
// keeps the latest report per peer in memory (never in the store: it is
// live state, and an HA instance that holds the agent's Sync stream is the
// one that gets its reports) and combines both sides' views per pair
// (Connectivity).

// PathState is how one agent reaches one of its peers.
type PathState string

// Path states; PathUnknown means no report names the peer.
const (
	PathUnknown    PathState = ""
	PathOffline    PathState = "offline"
	PathConnecting PathState = "connecting"
	PathP2P        PathState = "p2p"
	PathRelayed    PathState = "relayed"
)

// Report bounds and rate: a report's reason is cut to maxReportReason
// bytes, a latency to maxReportLatency; each peer may report
// reportBurst times at once and then once every 1/reportRate seconds
// (agents report at most every 5 s, plus once per Sync (re)connect).
const (
	maxReportReason = 64
	// maxHandshakeAge caps a reported handshake age (a year: "long ago").
	maxHandshakeAge  = 365 * 24 * time.Hour
	maxReportLatency = time.Minute
	reportRate       = 0.5
	reportBurst      = 4
	maxReporters     = 1 << 20
)

// PathView is one agent's view of one peer.
type PathView struct {
	State   PathState
	Reason  string        // relay reason when relayed, offline reason when offline
	Latency time.Duration // 0: unknown
	// Local and Remote are the direct path's ICE candidates as the
	// reporting agent sees them (p2p only); Handshake is when its last
	// WireGuard handshake with the peer was (zero: none yet).
	Local, Remote string
	Handshake     time.Time
	At            time.Time // when the report arrived
}

// pathReports holds the latest report of every peer with a Sync stream.
// A peer's report goes when its stream opens, ends or the peer is
// deleted (statusChanged, called with every hub status event); the agent
// sends a full report after each Sync (re)connect.
type pathReports struct {
	mu      sync.Mutex
	byPeer  map[string]*peerReport // by reporting peer ID
	limit   *ratelimit.Limiter[string]
	history map[string]map[string][]Failover // by account ID, network: route changes, oldest first (routereports.go)
}

type peerReport struct {
	accountID string
	views     map[string]PathView    // by reported peer ID
	routes    map[string]RouteChoice // by network (routereports.go)
}

// statusChanged drops the report of a peer whose Sync stream opened or
// ended or which was deleted.
func (r *pathReports) statusChanged(ev PeerEvent) {
	if ev.Resync || ev.Paths {
		return
	}
	r.mu.Lock()
	delete(r.byPeer, ev.PeerID)
	r.mu.Unlock()
}

func (r *pathReports) allow(peerID string) (bool, time.Duration) {
	r.mu.Lock()
	if r.limit == nil {
		r.limit = ratelimit.New[string](reportRate, reportBurst, maxReporters)
	}
	l := r.limit
	r.mu.Unlock()
	return l.Allow(peerID)
}

// views returns a copy of peerID's report (nil without one).
func (r *pathReports) views(peerID string) map[string]PathView {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := r.byPeer[peerID]
	if rep == nil {
		return nil
	}
	out := make(map[string]PathView, len(rep.views))
	for k, v := range rep.views {
		out[k] = v
	}
	return out
}

// ReportPeers records the sending peer's view of its peers' paths and the
// routing peers it uses (routereports.go). Only a peer with a live Sync
// stream may report (KindPrecondition otherwise); past the per-peer rate
// it is KindExhausted with a retry time. A report naming more entries than
// the account has peers (or route entries than it routes networks), or a
// malformed route entry, is KindInvalid and changes nothing; keys of no
// peer of the account, the sender's own key and unknown states are
// ignored; reasons are cut to 64 bytes without control characters.
func (s *Service) ReportPeers(peerKey keys.Public, req *managementpb.ReportPeersRequest) error {
	if err := s.running(); err != nil {
		return err
	}
	ref, ok := s.lookupKey(peerKey)
	if !ok {
		return Errorf(KindNotFound, "report peers: this key is not a registered peer")
	}
	if connected, _ := s.hub.status(ref.peerID); !connected {
		return Errorf(KindPrecondition, "report peers: no sync stream; open Sync first")
	}
	reports := &s.hub.watch.paths
	if ok, retry := reports.allow(ref.peerID); !ok {
		return &Error{Kind: KindExhausted, Msg: "report peers: too many reports; retry later", RetryAfter: retry}
	}
	st, err := s.account(ref.accountID)
	if err != nil {
		return err
	}
	acct := st.view().acct
	if n := len(req.GetPeers()) + len(req.GetRemovedKeys()); n > len(acct.Peers) {
		return Errorf(KindInvalid, "report peers: %d entries for an account of %d peers", n, len(acct.Peers))
	}
	now := s.now().UTC()
	resolve := func(b []byte) (string, bool) {
		pk, err := keys.PublicFromBytes(b)
		if err != nil {
			return "", false
		}
		r, ok := s.lookupKey(pk)
		if !ok || r.accountID != ref.accountID || r.peerID == ref.peerID {
			return "", false
		}
		return r.peerID, true
	}
	upserts := make(map[string]PathView, len(req.GetPeers()))
	for _, e := range req.GetPeers() {
		id, ok := resolve(e.GetPublicKey())
		if !ok {
			continue
		}
		state := pathStateOf(e.GetState())
		if state == PathUnknown {
			continue
		}
		v := PathView{State: state, Reason: cleanReason(e.GetReason()), At: now,
			Latency: min(time.Duration(e.GetLatencyUs())*time.Microsecond, maxReportLatency)}
		if state != PathRelayed && state != PathOffline {
			v.Reason = ""
		}
		if state == PathP2P {
			v.Local, v.Remote = cleanReason(e.GetLocalCandidate()), cleanReason(e.GetRemoteCandidate())
		}
		if age := e.GetHandshakeAgeMs(); age > 0 {
			v.Handshake = now.Add(-min(time.Duration(age)*time.Millisecond, maxHandshakeAge))
		}
		upserts[id] = v
	}
	var removed []string
	for _, b := range req.GetRemovedKeys() {
		if id, ok := resolve(b); ok {
			removed = append(removed, id)
		}
	}
	// Routes: a full report replaces them (with none, it clears them).
	var routes *routeUpdate
	if req.GetFull() || len(req.GetRoutes())+len(req.GetRemovedNetworks()) > 0 {
		u, err := s.routeUpdateOf(ref, acct, req, now)
		if err != nil {
			return err
		}
		routes = &u
	}

	reports.mu.Lock()
	if reports.byPeer == nil {
		reports.byPeer = map[string]*peerReport{}
	}
	rep := reports.byPeer[ref.peerID]
	if rep == nil {
		rep = &peerReport{accountID: ref.accountID, views: map[string]PathView{}}
		reports.byPeer[ref.peerID] = rep
	}
	changed := false
	if req.GetFull() {
		for id := range rep.views {
			if _, ok := upserts[id]; !ok {
				delete(rep.views, id)
				changed = true
			}
		}
	}
	for _, id := range removed {
		if _, ok := rep.views[id]; ok {
			delete(rep.views, id)
			changed = true
		}
	}
	for id, v := range upserts {
		old, ok := rep.views[id]
		if !ok || old.State != v.State || old.Reason != v.Reason {
			changed = true
		}
		rep.views[id] = v
	}
	if routes != nil {
		reports.applyRoutes(rep, ref.peerID, *routes, req.GetFull())
	}
	reports.mu.Unlock()
	if changed {
		s.hub.watch.publish(PeerEvent{AccountID: ref.accountID, PeerID: ref.peerID, Paths: true, At: now})
	}
	return nil
}

func pathStateOf(s managementpb.PeerPathState) PathState {
	switch s {
	case managementpb.PeerPathState_PEER_PATH_STATE_OFFLINE:
		return PathOffline
	case managementpb.PeerPathState_PEER_PATH_STATE_CONNECTING:
		return PathConnecting
	case managementpb.PeerPathState_PEER_PATH_STATE_P2P:
		return PathP2P
	case managementpb.PeerPathState_PEER_PATH_STATE_RELAYED:
		return PathRelayed
	}
	return PathUnknown
}

// cleanReason keeps valid, printable UTF-8 of at most maxReportReason bytes.
func cleanReason(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > maxReportReason {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
