package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"petrel/client/peer"
	"petrel/internal/keys"
	"petrel/proto/daemonpb"
	"petrel/proto/managementpb"
	"petrel/proto/signalpb"
)

// PathCached is the path status shows for a peer reached over the endpoint
// the map cache remembered, before ICE found a path (no signal yet).
const PathCached peer.Path = "cached"

type nilSignal struct{}

func (nilSignal) Send(context.Context, keys.Public, *signalpb.PeerMessage) error {
	return errors.New("signal not configured")
}

func (e *Engine) signalSender() peer.Signaler {
	if e.signal == nil {
		return nilSignal{}
	}
	return e.signal
}

// Status returns the agent state in the daemon API's shape.
func (e *Engine) Status() *daemonpb.StatusResponse {
	st := e.coreStatus()
	e.routeStatus(st)
	e.dnsStatus(st)
	e.firewallCounters(st)
	e.unsupportedStatus(st)
	return st
}

// coreStatus is the connection state and the peers, without the routes,
// DNS and firewall parts (the route planner reads it every second).
func (e *Engine) coreStatus() *daemonpb.StatusResponse {
	st := &daemonpb.StatusResponse{
		ManagementUrl:       e.cfg.ManagementURL,
		ManagementConnected: e.mgmtUp.Load(),
		PublicKey:           e.pub.String(),
		InterfaceName:       e.cfg.InterfaceName,
		Netstack:            e.cfg.Netstack,
		Socks5Addr:          e.socks,
		MapAgeSeconds:       int64(e.mapAge() / time.Second),
		MapFromCache:        e.cache.fromCache.Load(),
	}
	if e.cfg.Netstack {
		st.InterfaceName = ""
	}
	if e.signal != nil {
		st.SignalConnected = e.signal.Connected()
	}
	if e.relay != nil {
		st.RelayConnected = e.relay.Connected()
		st.RelayHomeUrl = e.relay.HomeURL()
	}
	var stats map[keys.Public]wgStats
	if e.dev != nil {
		stats = e.deviceStats()
	}
	// Copy under e.mu, ask the Conns after: a Conn holds its own lock while
	// it sets a WireGuard endpoint, which takes e.mu (peers.go).
	type entry struct {
		k    keys.Public
		r    *remote
		info *managementpb.RemotePeer
	}
	e.mu.Lock()
	if e.self != nil {
		st.Ip, st.Fqdn = e.self.Address, e.self.Fqdn
	}
	entries := make([]entry, 0, len(e.peers))
	for k, r := range e.peers {
		entries = append(entries, entry{k, r, r.info})
	}
	e.mu.Unlock()
	now := time.Now()
	for _, en := range entries {
		k, r, info := en.k, en.r, en.info
		ps := &daemonpb.PeerStatus{Name: info.Name, Fqdn: info.Fqdn, PublicKey: info.PublicKey}
		if len(info.AllowedIps) > 0 {
			ps.Ip = strings.TrimSuffix(info.AllowedIps[0], "/32")
		}
		cs := r.conn.Status()
		if cs.Path == peer.PathNone && r.cached.Load() {
			cs.Path = PathCached
		}
		ps.Path, ps.RelayUrl = string(cs.Path), cs.RelayURL
		ps.LocalCandidate, ps.RemoteCandidate = cs.LocalCandidate, cs.RemoteCandidate
		if cs.Path == peer.PathRelay {
			ps.RelayReason = cs.Reason
		}
		s, ok := stats[k]
		if ok {
			ps.RxBytes, ps.TxBytes = s.rx, s.tx
			if !s.handshake.IsZero() {
				ps.LastHandshakeUnix = s.handshake.Unix()
			}
		}
		// Offline first: a session WireGuard still holds says nothing
		// once the peer stopped answering or left signal (liveness.go).
		why := r.live.verdict(now, s.handshake)
		switch {
		case why != "":
			ps.Status, ps.OfflineReason = "offline", why
		case peerConnected(s, ok, cs, now):
			ps.Status = "connected"
		default:
			ps.Status = "connecting"
		}
		if rtt, age, ok := latencyOf(r, cs.Path, now); ok && why == "" {
			ps.LatencyMs = float64(rtt) / float64(time.Millisecond)
			ps.LatencyAgeS = int64(age / time.Second)
		}
		st.Peers = append(st.Peers, ps)
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].Fqdn < st.Peers[j].Fqdn })
	switch {
	case e.needsLogin.Load():
		st.State = "needs-login"
	case st.ManagementConnected && st.SignalConnected:
		st.State = "connected"
	default:
		st.State = "connecting"
	}
	return st
}

// peerConnected reports whether a peer the liveness rules do not hold
// offline counts as connected: a path and a WireGuard session whose keys
// are still in use (ok: the device has the peer).
func peerConnected(s wgStats, ok bool, cs peer.Status, now time.Time) bool {
	return ok && !s.handshake.IsZero() && now.Sub(s.handshake) < wgRejectAfterTime && cs.Path != peer.PathNone
}

type wgStats struct {
	handshake time.Time
	rx, tx    uint64
}

func (e *Engine) deviceStats() map[keys.Public]wgStats {
	raw, err := e.dev.Stats()
	if err != nil {
		return nil
	}
	out := make(map[keys.Public]wgStats, len(raw))
	for k, s := range raw {
		out[k] = wgStats{handshake: s.LastHandshake, rx: s.RxBytes, tx: s.TxBytes}
	}
	return out
}

// ResolvePeer finds a peer's overlay IP by name, DNS label, FQDN or IP.
func (e *Engine) ResolvePeer(q string) (netip.Addr, error) {
	q = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(q)), ".")
	if ip, err := netip.ParseAddr(q); err == nil {
		return ip, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.peers {
		fqdn := strings.TrimSuffix(strings.ToLower(r.info.Fqdn), ".")
		label, _, _ := strings.Cut(fqdn, ".")
		if q == fqdn || q == label || q == strings.ToLower(r.info.Name) {
			if len(r.info.AllowedIps) == 0 {
				break
			}
			pfx, err := netip.ParsePrefix(r.info.AllowedIps[0])
			if err != nil {
				return netip.Addr{}, fmt.Errorf("peer %s has a bad address: %w", q, err)
			}
			return pfx.Addr(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no peer named %q", q)
}

// Ping sends one ICMP echo over the overlay; it returns the RTT and the
// path the peer currently uses.
func (e *Engine) Ping(ctx context.Context, ip netip.Addr) (time.Duration, string, error) {
	path := "none"
	var conn *peer.Conn
	e.mu.Lock()
	for _, r := range e.peers {
		for _, a := range r.info.AllowedIps {
			if pfx, err := netip.ParsePrefix(a); err == nil && pfx.Contains(ip) {
				conn = r.conn
			}
		}
	}
	e.mu.Unlock()
	if conn != nil { // outside e.mu, see Status
		path = string(conn.Status().Path)
	}
	rtt, err := e.dev.Ping(ctx, ip)
	return rtt, path, err
}
