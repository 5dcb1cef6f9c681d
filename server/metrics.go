package server

import (
	"errors"
	"fmt"
	"net"

	"petrel/internal/metrics"
	"petrel/management/store"
)

// DefaultMetricsListen is petrel-server's default --metrics-listen:
// loopback only, so metrics and the profiler are never public unless the
// operator says so. 9464 is a port Prometheus exporters commonly use.
const DefaultMetricsListen = "127.0.0.1:9464"

// Metrics: one Registry per Server (tests run many in one process). The
// component collectors are registered as Start brings each component up;
// the listener, when Config.MetricsListen is set, starts last and stops
// first. See docs/metrics.md.

// validateMetrics checks the metrics fields of c (fills in nothing).
func (c *Config) validateMetrics() []error {
	var errs []error
	addr, err := metrics.ParseListen(c.MetricsListen)
	if err != nil {
		errs = append(errs, fmt.Errorf("--metrics-listen %w", err))
	}
	c.MetricsListen = addr
	if c.Pprof && c.MetricsListen == "" && err == nil {
		errs = append(errs, errors.New("--pprof needs --metrics-listen (the profiler is served only there)"))
	}
	if c.MetricsListen != "" && samePort(c.MetricsListen, c.Listen) {
		errs = append(errs, fmt.Errorf("--metrics-listen %s: must not be the public --listen address", c.MetricsListen))
	}
	return errs
}

// samePort reports whether two host:port strings name the same fixed
// port on overlapping addresses.
func samePort(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	unspec := func(h string) bool { ip := net.ParseIP(h); return h == "" || ip != nil && ip.IsUnspecified() }
	return ha == hb || unspec(ha) || unspec(hb)
}

// instrumentStore wraps the management service's store to time its
// transactions (called before management starts).
func (s *Server) instrumentStore(st store.Store) store.Store {
	return timedStore{Store: st, seconds: s.events.storeSeconds}
}

// registerManagementMetrics adds management's collectors (after it started).
func (s *Server) registerManagementMetrics() {
	s.metrics.MustRegister(s.events.collectors()...)
	s.metrics.MustRegister(managementCollector(s.mgmt, s.store)...)
}

// startMetrics registers the other components' collectors and starts the
// listener when one is configured.
func (s *Server) startMetrics() error {
	if s.sig != nil {
		s.metrics.MustRegister(signalCollector(s.sig))
	}
	if s.relay != nil {
		s.metrics.MustRegister(relayCollector(s.relay))
	}
	if s.stun != nil {
		s.metrics.MustRegister(stunCollector(s.stun, s.stun2))
	}
	if s.cfg.MetricsListen == "" {
		return nil
	}
	l, err := metrics.Listen(s.cfg.MetricsListen, s.metrics, metrics.Options{Pprof: s.cfg.Pprof, Logger: s.log})
	if err != nil {
		return fmt.Errorf("%w (--metrics-listen off disables it)", err)
	}
	s.metricsLn = l
	return nil
}

// Metrics is the server's registry: every series it exports, whether or
// not a metrics listener serves it.
func (s *Server) Metrics() *metrics.Registry { return s.metrics }

// MetricsAddr is the metrics listener's address (nil without one).
func (s *Server) MetricsAddr() net.Addr {
	if s.metricsLn == nil {
		return nil
	}
	return s.metricsLn.Addr()
}
