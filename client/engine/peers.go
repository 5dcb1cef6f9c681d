package engine

import (
	"fmt"
	"net/netip"
	"time"

	"petrel/client/peer"
	"petrel/client/wg"
	"petrel/internal/keys"
	"petrel/proto/managementpb"
)

// keepalive keeps NAT mappings and relay paths warm and makes WireGuard
// handshake as soon as a path exists.
const keepalive = 25 * time.Second

// On the side that initiates the first handshake (kick.go), a remote peer
// enters the WireGuard device only when its first path (relay or direct
// endpoint) is known: the peer is then created with that endpoint and its
// persistent keepalive, which makes WireGuard send a handshake initiation
// at once. Created earlier, without an endpoint, it would try that
// initiation with nowhere to send it, and WireGuard then waits
// RekeyTimeout (5 s) before it tries again, however soon the path appears.
//
// The other side (answering) creates the peer as soon as it is in the
// network map, without endpoint or keepalive: the initiator's first
// initiation can arrive (over the relay) before this side has processed
// the offer or answer that gives it a path, and WireGuard drops
// initiations from unknown keys. It also holds its paths back from
// WireGuard until keepaliveDelay after the first one: a peer with an
// endpoint initiates on the first packet sent to it, and that initiation
// would cross the initiator's (kick.go). Meanwhile WireGuard answers at
// once, to the address the initiation came from, and packets sent to the
// peer wait in its staging queue until the handshake completes.

// peerEndpoints adapts the engine to peer.Endpoints for one remote.
type peerEndpoints struct {
	e *Engine
	r *remote
}

func (p peerEndpoints) SetEndpoint(pub keys.Public, endpoint string) error {
	r := p.r
	r.devMu.Lock()
	defer r.devMu.Unlock()
	if r.removed {
		return fmt.Errorf("set endpoint %s: peer removed", pub.Short())
	}
	first := r.endpoint == ""
	switch {
	case r.hold:
		// Given to WireGuard when the keepalive timer fires (kick.go).
		if _, err := wg.ParseEndpoint(endpoint); err != nil {
			return fmt.Errorf("set endpoint: %w", err)
		}
		if err := p.e.ensureAnsweringLocked(pub, r); err != nil {
			return err
		}
	case r.configured:
		if err := p.e.dev.SetEndpoint(pub, endpoint); err != nil {
			return err
		}
	default:
		ka := p.e.initialKeepalive(pub)
		if err := p.e.dev.UpsertPeer(pub, p.e.allowedFor(r), endpoint, ka); err != nil {
			return err
		}
		r.configured, r.keepaliveOn = true, ka != 0
	}
	r.endpoint = endpoint
	if first {
		p.e.armHandshakeLocked(pub, r)
	}
	return nil
}

// ensureAnsweringLocked creates the WireGuard peer of a remote this agent
// does not initiate to, without endpoint or keepalive, unless it exists
// (r.devMu held; see above).
func (e *Engine) ensureAnsweringLocked(pub keys.Public, r *remote) error {
	if r.configured {
		return nil
	}
	if err := e.dev.UpsertPeer(pub, e.allowedFor(r), "", 0); err != nil {
		return err
	}
	r.configured = true
	return nil
}

// infoOf returns r's map entry (guarded by e.mu).
func (e *Engine) infoOf(r *remote) *managementpb.RemotePeer {
	e.mu.Lock()
	defer e.mu.Unlock()
	return r.info
}

// reconcilePeers makes the device and the peer Conns match the map.
func (e *Engine) reconcilePeers(nm *managementpb.NetworkMap) {
	want := make(map[keys.Public]*managementpb.RemotePeer, len(nm.Peers))
	for _, p := range nm.Peers {
		k, err := keys.ParsePublic(p.PublicKey)
		if err != nil || k == e.pub {
			continue
		}
		want[k] = p
	}
	stunURIs := e.stunURIs()
	e.mu.Lock()
	var overlay netip.Prefix
	if e.self != nil {
		if pfx, err := netip.ParsePrefix(e.self.Address); err == nil {
			overlay = pfx.Masked()
		}
	}
	var removed []*remote
	var removedKeys []keys.Public
	for k, r := range e.peers {
		if _, ok := want[k]; !ok {
			removed = append(removed, r)
			removedKeys = append(removedKeys, k)
			delete(e.peers, k)
		}
	}
	var added []*remote
	var changed []*remote
	for k, p := range want {
		if r, ok := e.peers[k]; ok {
			if !sameAllowed(r.info, p) {
				changed = append(changed, r)
			}
			r.info = p
			continue
		}
		// The answering side holds its paths from the start, so that a
		// path arriving before the peer is created below is held too.
		r := &remote{info: p, hold: !e.initiates(k)}
		r.conn = peer.New(peer.Config{
			Local: e.pub, Remote: k, Signal: e.signalSender(), Endpoints: peerEndpoints{e, r},
			RelayHome:       e.relayHome,
			RelayEndpoint:   wg.RelayEndpointString,
			DirectEndpoint:  func(addr string) string { return addr },
			Mux:             e.mux,
			STUN:            stunURIs,
			IncludeLoopback: e.cfg.ICELoopback,
			Overlay:         overlay,
			ForceRelay:      e.cfg.ForceRelay,
			WGPort:          uint32(e.bind.LocalAddr().Port),
			Logger:          e.cfg.Logger,
		})
		e.peers[k] = r
		added = append(added, r)
	}
	e.mu.Unlock()

	for i, r := range removed {
		r.conn.Close()
		r.devMu.Lock()
		r.removed = true
		if r.kick != nil {
			r.kick.Stop()
		}
		if err := e.dev.RemovePeer(removedKeys[i]); err != nil {
			e.log.Warn("remove peer", "peer", r.info.Name, "err", err)
		}
		r.devMu.Unlock()
		e.log.Info("peer removed", "peer", r.info.Fqdn)
	}
	for _, r := range changed {
		r.devMu.Lock()
		if r.configured { // otherwise the first endpoint creates it
			e.mu.Lock()
			info := r.info
			e.mu.Unlock()
			k, _ := keys.ParsePublic(info.PublicKey)
			if err := e.dev.UpsertPeer(k, e.allowedFor(r), "", r.keepalive()); err != nil {
				e.log.Warn("configure peer", "peer", info.Name, "err", err)
			}
		}
		r.devMu.Unlock()
	}
	for _, r := range added {
		e.log.Info("peer added", "peer", r.info.Fqdn)
		if k, err := keys.ParsePublic(r.info.PublicKey); err == nil && !e.initiates(k) {
			r.devMu.Lock()
			if !r.removed {
				if err := e.ensureAnsweringLocked(k, r); err != nil {
					e.log.Warn("configure peer", "peer", r.info.Name, "err", err) // its first path retries
				}
			}
			r.devMu.Unlock()
		}
		r.conn.Start()
	}
}

// mapAllowedIPs parses the allowed IPs the map lists for p. Configure
// WireGuard with allowedFor, never with these: the map also lists the
// networks of every routing peer (routes.go).
func mapAllowedIPs(p *managementpb.RemotePeer) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(p.AllowedIps))
	for _, s := range p.AllowedIps {
		if pfx, err := netip.ParsePrefix(s); err == nil {
			out = append(out, pfx)
		}
	}
	return out
}

func sameAllowed(a, b *managementpb.RemotePeer) bool {
	if len(a.AllowedIps) != len(b.AllowedIps) {
		return false
	}
	for i := range a.AllowedIps {
		if a.AllowedIps[i] != b.AllowedIps[i] {
			return false
		}
	}
	return true
}
