package engine

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/client/peer"
	"petrel/client/route"
	"petrel/internal/keys"
	"petrel/proto/managementpb"
)

// Path reports: the agent tells management how it reaches each peer
// (offline / connecting / p2p / relayed with the reason, latency), for
// the dashboard's connectivity matrix. reportLoop (one goroutine, tracked
// by probeWG) looks every reportTick; it sends only the entries whose state
// or reason changed (latency rides along, never triggers a report), at
// most every reportEvery, and a full report as soon as possible after each
// Sync (re)connect (the server drops a peer's report when its stream opens
// or ends).
//
// Route reports ride in the same request: for each network this agent
// sends through a routing peer (the plan's chosen routes, the exit node in
// use included), that peer, since when and why it was chosen (the HA
// Selector's choice). They are diffed like path entries: a report goes
// when a network's routing peer changes, appears or goes.
const (
	reportTick    = time.Second
	reportEvery   = 5 * time.Second
	reportTimeout = 10 * time.Second
)

// reportState is the reporter's shared part; onSync bumps fullGen with
// every full map.
type reportState struct {
	fullGen atomic.Uint64
}

// pathEntry is what the agent last reported about one peer.
type pathEntry struct {
	state         managementpb.PeerPathState
	reason        string
	local, remote string // the direct path's candidates (p2p only)
}

func (e *Engine) reportLoop() {
	defer e.probeWG.Done()
	t := time.NewTicker(reportTick)
	defer t.Stop()
	var (
		sent       map[keys.Public]pathEntry // what the server holds (nil: nothing known)
		sentRoutes map[string]routeEntry     // likewise for routes
		seen       map[string]routeEntry     // the last computed routes (sent or not)
		sentGen    uint64
		last       time.Time
		retryAt    time.Time
	)
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		gen := e.rep.fullGen.Load()
		full := gen != sentGen || sent == nil
		now := time.Now()
		if !e.mgmtUp.Load() || gen == 0 || now.Before(retryAt) || !full && now.Sub(last) < reportEvery {
			continue
		}
		cur, entries := e.pathReport()
		seen = e.routeReport(seen, now)
		req := reportDiff(sent, cur, entries, full)
		req = routeDiff(req, sentRoutes, seen, full, now)
		if req == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(e.ctx, reportTimeout)
		err := e.mgmt.ReportPeers(ctx, e.cfg.Key, req)
		cancel()
		last = time.Now()
		if status.Code(err) == codes.Unimplemented {
			e.log.Info("management server takes no path reports (older version)")
			return
		}
		if err != nil {
			// The server's copy is unknown now: the next report is full,
			// after reportEvery.
			e.log.Debug("path report not taken", "err", describe(err))
			sent, sentRoutes, retryAt = nil, nil, last.Add(reportEvery)
			continue
		}
		sent, sentRoutes, sentGen = cur, seen, gen
	}
}

// pathReport is every peer's entry now, keyed and as wire messages.
func (e *Engine) pathReport() (map[keys.Public]pathEntry, map[keys.Public]*managementpb.PeerPathReport) {
	st := e.coreStatus()
	now := time.Now()
	cur := make(map[keys.Public]pathEntry, len(st.Peers))
	msgs := make(map[keys.Public]*managementpb.PeerPathReport, len(st.Peers))
	for _, ps := range st.Peers {
		k, err := keys.ParsePublic(ps.PublicKey)
		if err != nil {
			continue
		}
		en := pathEntry{state: managementpb.PeerPathState_PEER_PATH_STATE_CONNECTING}
		switch {
		case ps.Status == "offline":
			en = pathEntry{state: managementpb.PeerPathState_PEER_PATH_STATE_OFFLINE, reason: ps.OfflineReason}
		case ps.Status != "connected":
		case ps.Path == string(peer.PathRelay):
			en = pathEntry{state: managementpb.PeerPathState_PEER_PATH_STATE_RELAYED, reason: ps.RelayReason}
		case ps.Path == string(peer.PathDirect) || ps.Path == string(PathCached):
			en.state = managementpb.PeerPathState_PEER_PATH_STATE_P2P
			en.local, en.remote = ps.LocalCandidate, ps.RemoteCandidate
		}
		cur[k] = en
		msgs[k] = &managementpb.PeerPathReport{PublicKey: k[:], State: en.state, Reason: en.reason,
			LatencyUs: uint32(ps.LatencyMs * 1000), LocalCandidate: en.local, RemoteCandidate: en.remote,
			HandshakeAgeMs: handshakeAge(ps.LastHandshakeUnix, now)}
	}
	return cur, msgs
}

// handshakeAge is how long before now a handshake at unix second t was
// (0 when there was none).
func handshakeAge(t int64, now time.Time) uint64 {
	if t <= 0 {
		return 0
	}
	return uint64(max(time.Millisecond, now.Sub(time.Unix(t, 0))) / time.Millisecond)
}

// reportDiff is the request that brings the server from sent to cur: all
// of cur when full, else the changed entries and the removed keys; nil
// when nothing changed.
func reportDiff(sent, cur map[keys.Public]pathEntry, msgs map[keys.Public]*managementpb.PeerPathReport, full bool) *managementpb.ReportPeersRequest {
	req := &managementpb.ReportPeersRequest{Full: full}
	for k, en := range cur {
		if old, ok := sent[k]; full || !ok || old != en {
			req.Peers = append(req.Peers, msgs[k])
		}
	}
	if !full {
		for k := range sent {
			if _, ok := cur[k]; !ok {
				req.RemovedKeys = append(req.RemovedKeys, k[:])
			}
		}
		if len(req.Peers) == 0 && len(req.RemovedKeys) == 0 {
			return nil
		}
	}
	return req
}

// routeEntry is the routing peer this agent uses for one network.
type routeEntry struct {
	peer   keys.Public
	since  time.Time
	reason string
}

// userExit is the reason reported for an exit node the user selected
// (the Selector does not choose it).
const userExit = "selected by the user"

// routeReport is the routing peer of every network the plan sends through
// one now, keyed by network. prev (the last result) keeps the time an
// exit node the user selected became active; the Selector knows the rest.
func (e *Engine) routeReport(prev map[string]routeEntry, now time.Time) map[string]routeEntry {
	out := map[string]routeEntry{}
	if e.rt == nil {
		return out
	}
	e.rt.mu.Lock()
	defer e.rt.mu.Unlock()
	return activeRoutes(e.rt.plan, e.rt.sel.Choices(), prev, now)
}

// activeRoutes is routeReport's pure part.
func activeRoutes(plan route.Plan, choices map[string]route.Active, prev map[string]routeEntry, now time.Time) map[string]routeEntry {
	out := map[string]routeEntry{}
	for _, r := range plan.Routes {
		if !r.Chosen { // installed or shadowed: the networks sent through a routing peer
			continue
		}
		k, err := keys.ParsePublic(r.Peer)
		if err != nil {
			continue
		}
		key, selected := r.Network, true
		if n, err := netip.ParsePrefix(r.Network); err == nil && n.Bits() == 0 {
			// The Selector keeps the exit node's choice under 0.0.0.0/0,
			// and only makes it when the user selected none.
			key, selected = "0.0.0.0/0", plan.Exit.Auto
		}
		en := routeEntry{peer: k, since: now, reason: r.Reason}
		if !selected {
			en.reason = userExit
		}
		if c, ok := choices[key]; selected && ok && c.Peer == r.Peer {
			en.since, en.reason = c.Since, c.Reason
		} else if p, ok := prev[r.Network]; ok && p.peer == k {
			en.since = p.since
		}
		out[r.Network] = en
	}
	return out
}

// routeDiff adds to req (nil: none yet) what brings the server's routes
// from sent to cur: all of cur when full, else the changed entries and the
// removed networks. It returns nil when neither paths nor routes changed.
func routeDiff(req *managementpb.ReportPeersRequest, sent, cur map[string]routeEntry, full bool, now time.Time) *managementpb.ReportPeersRequest {
	var add []*managementpb.RouteReport
	var removed []string
	for n, en := range cur {
		if old, ok := sent[n]; full || !ok || old != en {
			add = append(add, &managementpb.RouteReport{Network: n, PeerPublicKey: en.peer[:], Reason: en.reason,
				ActiveMs: uint64(max(now.Sub(en.since), 0).Milliseconds())})
		}
	}
	if !full {
		for n := range sent {
			if _, ok := cur[n]; !ok {
				removed = append(removed, n)
			}
		}
	}
	if req == nil {
		if !full && len(add) == 0 && len(removed) == 0 {
			return nil
		}
		req = &managementpb.ReportPeersRequest{Full: full}
	}
	slices.SortFunc(add, func(a, b *managementpb.RouteReport) int { return strings.Compare(a.Network, b.Network) })
	slices.Sort(removed)
	req.Routes, req.RemovedNetworks = add, removed
	return req
}
