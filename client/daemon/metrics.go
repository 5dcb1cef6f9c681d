package daemon

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"petrel/client/engine"
	"petrel/internal/metrics"
)

// The agent's metrics: one Registry per daemon, whose collector reads the
// running engine's Stats at scrape time (nothing when the agent is down),
// served by a listener of its own when Options.MetricsListen is set. The
// scrape never takes the daemon's mutex (held for as long as a login
// takes): it reads the engine from d.live. See docs/metrics.md.

// startMetrics validates the options and starts the listener, if any.
func (d *Daemon) startMetrics() error {
	addr, err := metrics.ParseListen(d.opts.MetricsListen)
	if err != nil {
		return fmt.Errorf("--metrics-listen %w", err)
	}
	if addr == "" {
		if d.opts.Pprof {
			return errors.New("--pprof needs --metrics-listen (the profiler is served only there)")
		}
		return nil
	}
	l, err := metrics.Listen(addr, d.metrics, metrics.Options{Pprof: d.opts.Pprof, Logger: d.log})
	if err != nil {
		return err
	}
	d.metricsLn = l
	d.log.Info("metrics listening", "addr", l.Addr().String(), "pprof", d.opts.Pprof)
	return nil
}

// Metrics is the daemon's registry.
func (d *Daemon) Metrics() *metrics.Registry { return d.metrics }

// MetricsAddr is the metrics listener's address (nil without one).
func (d *Daemon) MetricsAddr() net.Addr {
	if d.metricsLn == nil {
		return nil
	}
	return d.metricsLn.Addr()
}

// Paths and statuses a peer can have; the peers gauge reports every
// combination, zeros included, so a series does not vanish when its
// count drops to none.
var (
	peerPaths    = []string{"p2p", "relay", string(engine.PathCached), "none"}
	peerStatuses = []string{"connected", "connecting", "offline"}
)

// agentCollector reads the live engine's Stats.
type agentCollector struct {
	d *Daemon

	up, connected, mapAge, peers                        *metrics.Family
	rx, tx, handshakeAge, latency, spoofed              *metrics.Family
	relayReconnects, signalReconnects                   *metrics.Family
	dnsQueries, dnsCache, dnsUpstream, dnsDropped       *metrics.Family
	fwPackets, fwOther, fwMalformed, fwRefused, fwFlows *metrics.Family
}

func newAgentCollector(d *Daemon) *metrics.Collector {
	g, c := metrics.Gauge, metrics.Counter
	pk := []string{"peer", "key"}
	a := &agentCollector{d: d,
		up:        g("petrel_agent_engine_up", "1 while the agent is up (logged in, engine running), else 0."),
		connected: g("petrel_agent_connected", "1 while the agent's link to the control plane is up, by link (management, signal, relay).", "link"),
		mapAge:    g("petrel_agent_map_age_seconds", "Age of the network map in use when it is not live (management unreachable; from the cache); 0 while live."),
		peers:     g("petrel_agent_peers", "Remote peers by path (p2p, relay, cached, none) and status (connected, connecting, offline).", "path", "status"),
		rx:        c("petrel_agent_peer_rx_bytes_total", "WireGuard bytes received from the peer.", pk...),
		tx:        c("petrel_agent_peer_tx_bytes_total", "WireGuard bytes sent to the peer.", pk...),
		handshakeAge: g("petrel_agent_peer_handshake_age_seconds",
			"Seconds since the last WireGuard handshake with the peer (absent before the first).", pk...),
		latency: g("petrel_agent_peer_latency_seconds", "Last measured round trip to the peer (absent when unknown).", pk...),
		spoofed: c("petrel_agent_peer_spoofed_packets_total",
			"Packets from the peer dropped because their inner source was not one of its addresses.", pk...),
		relayReconnects: c("petrel_agent_relay_reconnects_total", "Connections to the home relay after the first one."),
		signalReconnects: c("petrel_agent_signal_reconnects_total",
			"Connections to signal after the first one."),
		dnsQueries: c("petrel_agent_dns_queries_total",
			"DNS queries answered, by the handler that answered and the rcode.", "handler", "rcode"),
		dnsCache: c("petrel_agent_dns_cache_lookups_total",
			"Control-plane name cache lookups by result: hit (fresh entry), stale (served while refreshing), miss (resolved on demand).", "result"),
		dnsUpstream: c("petrel_agent_dns_upstream_exchanges_total",
			"Exchanges with upstream DNS servers by server and result (ok, failure).", "upstream", "result"),
		dnsDropped: c("petrel_agent_dns_dropped_total", "DNS queries dropped because too many queries needing I/O were in flight."),
		fwPackets: c("petrel_agent_firewall_packets_total",
			"Packets the packet filter judged, by peer, direction (in, out) and verdict (allowed, dropped).", "peer", "key", "direction", "verdict"),
		fwOther: c("petrel_agent_firewall_other_packets_total",
			"Packets judged whose remote is no peer (routed networks, unknown or malformed sources), by direction and verdict.", "direction", "verdict"),
		fwMalformed: c("petrel_agent_firewall_malformed_total", "Packets dropped as undecodable."),
		fwRefused:   c("petrel_agent_firewall_conntrack_refused_total", "New flows refused because the connection table was full."),
		fwFlows:     g("petrel_agent_firewall_flows", "Entries in the packet filter's connection table."),
	}
	return metrics.NewCollector(a.collect,
		a.up, a.connected, a.mapAge, a.peers,
		a.rx, a.tx, a.handshakeAge, a.latency, a.spoofed,
		a.relayReconnects, a.signalReconnects,
		a.dnsQueries, a.dnsCache, a.dnsUpstream, a.dnsDropped,
		a.fwPackets, a.fwOther, a.fwMalformed, a.fwRefused, a.fwFlows)
}

func (a *agentCollector) collect(ch chan<- prometheus.Metric) {
	eng := a.d.live.Load()
	if eng == nil {
		a.up.Emit(ch, 0)
		return
	}
	st := eng.Stats()
	a.up.Emit(ch, 1)
	a.connected.Emit(ch, b2f(st.ManagementConnected), "management")
	a.connected.Emit(ch, b2f(st.SignalConnected), "signal")
	a.connected.Emit(ch, b2f(st.RelayConnected), "relay")
	a.mapAge.Emit(ch, st.MapAge.Seconds())
	a.relayReconnects.Emit(ch, float64(reconnects(st.RelayConnects)))
	a.signalReconnects.Emit(ch, float64(reconnects(st.SignalConnects)))
	a.collectPeers(ch, st.Peers)
	if s := st.DNS; s != nil {
		for _, q := range s.Queries {
			a.dnsQueries.Emit(ch, float64(q.N), q.Handler, q.Rcode)
		}
		a.dnsCache.Emit(ch, float64(s.CacheHits), "hit")
		a.dnsCache.Emit(ch, float64(s.CacheStale), "stale")
		a.dnsCache.Emit(ch, float64(s.CacheMisses), "miss")
		for _, u := range s.Upstreams {
			a.dnsUpstream.Emit(ch, float64(u.OK), u.Server, "ok")
			a.dnsUpstream.Emit(ch, float64(u.Failures), u.Server, "failure")
		}
		a.dnsDropped.Emit(ch, float64(s.Dropped))
	}
	if f := st.Firewall; f != nil {
		emitVerdicts(ch, a.fwOther, f.Other.InAllowed, f.Other.InDropped, f.Other.OutAllowed, f.Other.OutDropped)
		a.fwMalformed.Emit(ch, float64(f.Malformed))
		a.fwRefused.Emit(ch, float64(f.Limited))
		a.fwFlows.Emit(ch, float64(f.Flows))
	}
}

func (a *agentCollector) collectPeers(ch chan<- prometheus.Metric, peers []engine.PeerStats) {
	type ps struct{ path, status string }
	counts := map[ps]int{}
	for _, p := range peerPaths {
		for _, s := range peerStatuses {
			counts[ps{p, s}] = 0
		}
	}
	now := time.Now()
	for _, p := range peers {
		counts[ps{p.Path, p.Status}]++
		a.rx.Emit(ch, float64(p.RxBytes), p.Name, p.Key)
		a.tx.Emit(ch, float64(p.TxBytes), p.Name, p.Key)
		a.spoofed.Emit(ch, float64(p.Spoofed), p.Name, p.Key)
		if !p.LastHandshake.IsZero() {
			a.handshakeAge.Emit(ch, max(0, now.Sub(p.LastHandshake).Seconds()), p.Name, p.Key)
		}
		if p.Latency > 0 {
			a.latency.Emit(ch, p.Latency.Seconds(), p.Name, p.Key)
		}
		c := p.Firewall
		emitVerdicts(ch, a.fwPackets, c.InAllowed, c.InDropped, c.OutAllowed, c.OutDropped, p.Name, p.Key)
	}
	for k, n := range counts {
		a.peers.Emit(ch, float64(n), k.path, k.status)
	}
}

// emitVerdicts emits the four direction × verdict series of f, after the
// leading label values lvs.
func emitVerdicts(ch chan<- prometheus.Metric, f *metrics.Family, inOK, inDrop, outOK, outDrop uint64, lvs ...string) {
	for _, v := range []struct {
		n            uint64
		dir, verdict string
	}{{inOK, "in", "allowed"}, {inDrop, "in", "dropped"}, {outOK, "out", "allowed"}, {outDrop, "out", "dropped"}} {
		f.Emit(ch, float64(v.n), append(lvs[:len(lvs):len(lvs)], v.dir, v.verdict)...)
	}
}

func reconnects(connects uint64) uint64 {
	if connects == 0 {
		return 0
	}
	return connects - 1
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
