package engine

import (
	"context"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/client/peer"
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
	state  managementpb.PeerPathState
	reason string
}

func (e *Engine) reportLoop() {
	defer e.probeWG.Done()
	t := time.NewTicker(reportTick)
	defer t.Stop()
	var (
		sent    map[keys.Public]pathEntry // what the server holds (nil: nothing known)
		sentGen uint64
		last    time.Time
		retryAt time.Time
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
		req := reportDiff(sent, cur, entries, full)
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
			sent, retryAt = nil, last.Add(reportEvery)
			continue
		}
		sent, sentGen = cur, gen
	}
}

// pathReport is every peer's entry now, keyed and as wire messages.
func (e *Engine) pathReport() (map[keys.Public]pathEntry, map[keys.Public]*managementpb.PeerPathReport) {
	st := e.coreStatus()
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
			en = pathEntry{managementpb.PeerPathState_PEER_PATH_STATE_OFFLINE, ps.OfflineReason}
		case ps.Status != "connected":
		case ps.Path == string(peer.PathRelay):
			en = pathEntry{managementpb.PeerPathState_PEER_PATH_STATE_RELAYED, ps.RelayReason}
		case ps.Path == string(peer.PathDirect) || ps.Path == string(PathCached):
			en.state = managementpb.PeerPathState_PEER_PATH_STATE_P2P
		}
		cur[k] = en
		msgs[k] = &managementpb.PeerPathReport{PublicKey: k[:], State: en.state, Reason: en.reason,
			LatencyUs: uint32(ps.LatencyMs * 1000)}
	}
	return cur, msgs
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
