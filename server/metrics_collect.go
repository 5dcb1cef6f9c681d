package server

import (
	"context"
	"strings"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"petrel/internal/metrics"
	"petrel/management"
	"petrel/management/store"
	"petrel/relay"
	"petrel/signal"
	"petrel/stun"
)

// Metric series of petrel-server (docs/metrics.md lists them all). Most
// read a component's own counters at scrape time; only the distributions
// (latencies, sizes) are fed per event, through grpcapi.Observer and the
// store wrapper below.

// eventMetrics are the families fed per event. They implement
// grpcapi.Observer.
type eventMetrics struct {
	logins       *prometheus.CounterVec
	loginSeconds *prometheus.HistogramVec
	syncBytes    *prometheus.HistogramVec
	storeSeconds *prometheus.HistogramVec
}

func newEventMetrics() *eventMetrics {
	return &eventMetrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "petrel_management_logins_total",
			Help: "Login calls by operation (register: a new key, login: a registered peer, unknown: the envelope did not open) and result (ok, or the gRPC status in snake case).",
		}, []string{"op", "result"}),
		loginSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "petrel_management_login_duration_seconds",
			Help:    "Time to answer a Login call, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14), // 1 ms .. 8 s
		}, []string{"op"}),
		syncBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "petrel_management_sync_message_bytes",
			Help:    "Sealed size of the Sync messages sent, by kind (full map, delta, config); the count is the number of messages.",
			Buckets: prometheus.ExponentialBuckets(64, 4, 10), // 64 B .. 16 MiB
		}, []string{"kind"}),
		storeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "petrel_store_update_duration_seconds",
			Help:    "Time of a store write transaction (retries included), by result (ok, error).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms .. 4 s
		}, []string{"result"}),
	}
}

func (m *eventMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.logins, m.loginSeconds, m.syncBytes, m.storeSeconds}
}

// Login implements grpcapi.Observer.
func (m *eventMetrics) Login(op string, code codes.Code, d time.Duration) {
	m.logins.WithLabelValues(op, codeLabel(code)).Inc()
	m.loginSeconds.WithLabelValues(op).Observe(d.Seconds())
}

// SyncSent implements grpcapi.Observer.
func (m *eventMetrics) SyncSent(kind string, size int) {
	m.syncBytes.WithLabelValues(kind).Observe(float64(size))
}

// codeLabel is a gRPC code in snake case: "ok", "resource_exhausted".
func codeLabel(c codes.Code) string {
	var b strings.Builder
	prevLower := false
	for _, r := range c.String() {
		upper := unicode.IsUpper(r)
		if upper && prevLower {
			b.WriteByte('_')
		}
		prevLower = !upper
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// timedStore times the management service's write transactions.
type timedStore struct {
	store.Store
	seconds *prometheus.HistogramVec
}

func (t timedStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	start := time.Now()
	err := t.Store.Update(ctx, fn)
	result := "ok"
	if err != nil {
		result = "error"
	}
	t.seconds.WithLabelValues(result).Observe(time.Since(start).Seconds())
	return err
}

// storeRetries reads a store's retry counter; stores that never retry
// (SQLite waits on its lock instead) report 0.
func storeRetries(st store.Store) func() float64 {
	r, ok := st.(interface{ Retries() uint64 })
	return func() float64 {
		if !ok {
			return 0
		}
		return float64(r.Retries())
	}
}

// managementCollector reads the Sync hub's counters.
func managementCollector(svc *management.Service, st store.Store) []prometheus.Collector {
	streams := metrics.Gauge("petrel_management_sync_streams", "Sync streams open now (one per connected agent).")
	coalesced := metrics.Counter("petrel_management_sync_coalesced_total", "Deltas merged into a later one because their Sync stream lagged.")
	cut := metrics.Counter("petrel_management_sync_cut_total", "Sync streams cut for lagging too far behind (the agent resyncs in full).")
	peers := metrics.Gauge("petrel_management_peers", "Registered peers, all accounts.")
	c := metrics.NewCollector(func(ch chan<- prometheus.Metric) {
		s := svc.SyncStats()
		streams.Emit(ch, float64(s.Open))
		coalesced.Emit(ch, float64(s.Coalesced))
		cut.Emit(ch, float64(s.Cut))
		peers.Emit(ch, float64(s.Peers))
	}, streams, coalesced, cut, peers)
	retries := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "petrel_store_update_retries_total",
		Help: "Store write transactions run again after a serialization failure (PostgreSQL).",
	}, storeRetries(st))
	return []prometheus.Collector{c, retries}
}

func signalCollector(sig *signal.Server) prometheus.Collector {
	sessions := metrics.Gauge("petrel_signal_sessions", "Registered signal sessions now.")
	messages := metrics.Counter("petrel_signal_messages_total",
		"Envelopes by result: routed to the recipient, or dropped (undeliverable: recipient not connected; rejected: bad or too large; rate_limited: sender over its rate; recipient_busy: recipient's queue full).", "result")
	closed := metrics.Counter("petrel_signal_sessions_closed_total",
		"Sessions the server closed, by reason (replaced by a newer session of the key, overflow of its queue, dead: heartbeat timeout).", "reason")
	refused := metrics.Counter("petrel_signal_refused_total",
		"Streams or registrations refused, by reason.", "reason")
	return metrics.NewCollector(func(ch chan<- prometheus.Metric) {
		s := sig.Stats()
		sessions.Emit(ch, float64(s.Connected))
		for _, v := range []struct {
			l string
			n uint64
		}{{"routed", s.Routed}, {"undeliverable", s.Undeliverable}, {"rejected", s.Rejected},
			{"rate_limited", s.RateLimited}, {"recipient_busy", s.RecipientBusy}} {
			messages.Emit(ch, float64(v.n), v.l)
		}
		closed.Emit(ch, float64(s.Replaced), "replaced")
		closed.Emit(ch, float64(s.Overflows), "overflow")
		closed.Emit(ch, float64(s.DeadStreams), "dead")
		for _, v := range []struct {
			l string
			n uint64
		}{{"auth_failed", s.AuthFailures}, {"unauthorized", s.Unauthorized}, {"opens_limited", s.OpensLimited},
			{"source_capped", s.SourceCapped}, {"pending_capped", s.PendingCapped}, {"session_capped", s.SessionCapped}} {
			refused.Emit(ch, float64(v.n), v.l)
		}
	}, sessions, messages, closed, refused)
}

func relayCollector(rel *relay.Server) prometheus.Collector {
	conns := metrics.Gauge("petrel_relay_connections", "Relay WebSocket connections open now.")
	accepted := metrics.Counter("petrel_relay_accepted_total", "Relay WebSocket connections accepted.")
	authFailed := metrics.Counter("petrel_relay_auth_failures_total", "Relay connections refused at authentication.")
	frames := metrics.Counter("petrel_relay_frames_total",
		"Frames by result: forwarded to the destination, dropped (its queue was full), unreachable (destination not here), bad (malformed or unexpected).", "result")
	bytes := metrics.Counter("petrel_relay_forwarded_bytes_total", "WireGuard payload bytes forwarded (frame headers excluded).")
	return metrics.NewCollector(func(ch chan<- prometheus.Metric) {
		s := rel.Stats()
		conns.Emit(ch, float64(s.Conns))
		accepted.Emit(ch, float64(s.Accepted))
		authFailed.Emit(ch, float64(s.AuthFailed))
		frames.Emit(ch, float64(s.Forwarded), "forwarded")
		frames.Emit(ch, float64(s.Dropped), "dropped")
		frames.Emit(ch, float64(s.Unreachable), "unreachable")
		frames.Emit(ch, float64(s.BadFrames), "bad")
		bytes.Emit(ch, float64(s.ForwardedBytes))
	}, conns, accepted, authFailed, frames, bytes)
}

// stunCollector sums the STUN listeners (the primary port and the one
// after it).
func stunCollector(servers ...*stun.Server) prometheus.Collector {
	requests := metrics.Counter("petrel_stun_requests_total",
		"STUN binding requests by result (answered, rate_limited: dropped by the per-source limit).", "result")
	return metrics.NewCollector(func(ch chan<- prometheus.Metric) {
		var answered, limited uint64
		for _, st := range servers {
			if st != nil {
				s := st.Stats()
				answered += s.Answered
				limited += s.RateLimited
			}
		}
		requests.Emit(ch, float64(answered), "answered")
		requests.Emit(ch, float64(limited), "rate_limited")
	}, requests)
}
