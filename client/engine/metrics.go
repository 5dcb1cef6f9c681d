package engine

import (
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"petrel/client/dns"
	"petrel/client/firewall"
	"petrel/internal/keys"
)

// Stats is a snapshot of the agent's state and counters, for metrics
// (client/daemon turns it into Prometheus series). It is read from the
// same sources as Status: nothing is counted on the data plane for it.
type Stats struct {
	State                                                string // connected, connecting, needs-login
	ManagementConnected, SignalConnected, RelayConnected bool
	MapAge                                               time.Duration // 0 while the map is live
	Peers                                                []PeerStats
	// RelayConnects and SignalConnects count the connections made to the
	// home relay and to signal since the engine started (reconnects are
	// these minus one).
	RelayConnects, SignalConnects uint64
	DNS                           *dns.Stats      // nil without a resolver
	Firewall                      *FirewallTotals // nil without a packet filter
}

// PeerStats is one remote peer. Name is its DNS label (its name when it
// has none); Key its short public key, which keeps two peers apart.
type PeerStats struct {
	Name, Key        string
	Path, Status     string // as in status: p2p|relay|cached|none; connected|connecting|offline
	RxBytes, TxBytes uint64
	LastHandshake    time.Time     // zero: none yet
	Latency          time.Duration // 0: unknown
	Firewall         firewall.PeerCounters
	Spoofed          uint64 // packets dropped: inner source not the peer's
}

// FirewallTotals are the filter's counters not tied to a peer.
type FirewallTotals struct {
	Other firewall.PeerCounters // remotes that are no peer (routed networks, unknown sources, malformed)
	firewall.Totals
}

// linkCounters count control-plane connections (control.go).
type linkCounters struct {
	relay, signal atomic.Uint64
}

// Stats returns the snapshot. Safe for concurrent use, also while the
// engine stops.
func (e *Engine) Stats() Stats {
	st := e.coreStatus()
	e.firewallCounters(st)
	out := Stats{
		State: st.State, ManagementConnected: st.ManagementConnected, SignalConnected: st.SignalConnected,
		RelayConnected: st.RelayConnected, MapAge: time.Duration(st.MapAgeSeconds) * time.Second,
		RelayConnects: e.links.relay.Load(), SignalConnects: e.links.signal.Load(),
	}
	for _, p := range st.Peers {
		ps := PeerStats{Name: peerLabel(p.Fqdn, p.Name, p.PublicKey), Key: shortKey(p.PublicKey),
			Path: p.Path, Status: p.Status, RxBytes: p.RxBytes, TxBytes: p.TxBytes,
			Latency: time.Duration(p.LatencyMs * float64(time.Millisecond))}
		if p.LastHandshakeUnix > 0 {
			ps.LastHandshake = time.Unix(p.LastHandshakeUnix, 0)
		}
		if c := p.Firewall; c != nil {
			ps.Firewall = firewall.PeerCounters{InAllowed: c.InAllowed, InDropped: c.InDropped, OutAllowed: c.OutAllowed, OutDropped: c.OutDropped}
			ps.Spoofed = c.Spoofed
		}
		out.Peers = append(out.Peers, ps)
	}
	if res := e.resolver(); res != nil {
		ds := res.Stats()
		out.DNS = &ds
	}
	if e.fw != nil {
		// Stats sums every remote that is no peer under the zero Addr.
		out.Firewall = &FirewallTotals{Other: e.fw.Stats()[netip.Addr{}], Totals: e.fw.Totals()}
	}
	return out
}

// peerLabel is the first label of fqdn, else name, else the short key.
func peerLabel(fqdn, name, key string) string {
	if l, _, _ := strings.Cut(strings.TrimSuffix(fqdn, "."), "."); l != "" {
		return l
	}
	if name != "" {
		return name
	}
	return shortKey(key)
}

func shortKey(s string) string {
	if k, err := keys.ParsePublic(s); err == nil {
		return k.Short()
	}
	return ""
}
