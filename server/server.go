// Package server assembles petrel-server's control plane: management (gRPC
// for agents, REST for admins), signal, relay and STUN, on one TCP listener
// plus STUN on UDP. Connections are split by sniffing the HTTP/2 client
// preface: HTTP/2 with prior knowledge (gRPC) goes to grpc-go's native
// server, HTTP/1.1 to net/http (REST under /api, the dashboard under /ui, the
// relay WebSocket at /relay, /healthz); see docs/adr-001-one-port-listener.md. With
// Config.TLS the port serves TLS, terminated before the split, with
// certificates from files or ACME (tls.go, docs/https.md).
//
// Imported by cmd/petrel-server (a thin flag layer over Config) and by
// integration tests that need a real control plane in-process.
//
// Lifecycle: New validates a Config; Start opens the store and the sockets
// and serves in background goroutines (it does not block); Stop is
// idempotent and final, and a failed Start rolls back through it. Done is
// closed when serving ends (after Stop, or early if the listener fails; Err
// says why). The accessors may be called from any goroutine once Start has
// returned.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"petrel/internal/keys"
	"petrel/internal/metrics"
	"petrel/internal/privdir"
	"petrel/management"
	"petrel/management/grpcapi"
	"petrel/management/restapi"
	"petrel/management/store"
	"petrel/management/store/storeopen"
	"petrel/management/ui"
	"petrel/relay"
	"petrel/relay/auth"
	"petrel/server/internal/split"
	"petrel/signal"
	"petrel/stun"
)

type lifecycle int

const (
	stateNew lifecycle = iota
	stateRunning
	stateStopped
)

// Server is one control-plane process.
type Server struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex // guards state; held by Start throughout
	state    lifecycle
	stopOnce sync.Once

	// Set by Start, read-only afterwards.
	ln         net.Listener
	split      *split.Listener
	grpc       *grpc.Server
	http       *http.Server
	store      store.Store
	feed       store.Feed // with --ha: the shared store's commit feed
	mgmt       *management.Service
	sig        *signal.Server
	cluster    *cluster // with --ha: cross-instance signal (cluster.go)
	fence      *fencer  // with --ha: self-fencing (fence.go)
	ping       func(context.Context) error
	relay      *relay.Server
	stun       *stun.Server
	stun2      *stun.Server // second port: lets agents detect symmetric NATs
	ep         Endpoints
	adminToken string     // only when created by this start
	certs      *certFiles // TLS from files (tls.go)
	acme       *acmeCerts // TLS from ACME (acme.go)
	metricsLn  *metrics.Listener

	metrics *metrics.Registry // metrics.go; made by New
	events  *eventMetrics

	serving  sync.WaitGroup
	done     chan struct{}
	doneOnce sync.Once
	serveErr error // written before done is closed
}

// New validates cfg and returns a server that is not started. Every
// problem in cfg is reported, joined.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, log: cfg.Logger.With("component", "server"), done: make(chan struct{}),
		metrics: metrics.NewRegistry(), events: newEventMetrics()}, nil
}

// Start binds the sockets, opens the store, starts the configured
// components and begins serving. On an empty store it creates the default
// account (with an All<->All accept policy) and writes its admin token to
// TokenFile (0600). On failure everything started is stopped.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return errors.New("start server: already started or stopped")
	}
	s.state = stateRunning
	if err := s.start(ctx); err != nil {
		s.state = stateStopped
		s.stopOnce.Do(s.teardown)
		return err
	}
	s.log.Info("petrel-server started", "listen", s.ln.Addr().String(), "components", s.cfg.Components.String())
	return nil
}

func (s *Server) start(ctx context.Context) (err error) {
	cfg := &s.cfg
	loose, err := privdir.Ensure(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if loose != 0 {
		s.log.Warn("data dir was open to other users; tightened to 0700", "dir", cfg.DataDir, "was", fmt.Sprintf("%04o", loose))
	}
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	var stunAddr net.Addr
	if cfg.Components.STUN {
		st := stun.NewServer(cfg.STUNListen, cfg.Logger)
		if err := st.Start(); err != nil {
			return fmt.Errorf("start stun on %s: %w", cfg.STUNListen, err)
		}
		s.stun = st
		stunAddr = st.Addr()
		s.stun2 = s.startSecondSTUN(st.Addr())
	}
	var warnings []string
	if s.ep, warnings, err = deriveEndpoints(cfg, s.ln.Addr(), stunAddr); err != nil {
		return err
	}
	if s.stun2 != nil && len(cfg.STUNURLs) == 0 && len(s.ep.STUNURLs) == 1 {
		s.ep.STUNURLs = append(s.ep.STUNURLs, secondSTUNURL(s.ep.STUNURLs[0], s.stun2.Addr()))
	}
	for _, w := range warnings {
		s.log.Warn(w)
	}
	tlsConf, err := s.startTLS()
	if err != nil {
		return err
	}
	// The relay secret verifies tokens at the relay and mints them in
	// management (only when a relay is advertised).
	var secret []byte
	if cfg.Components.Relay || (cfg.Components.Management && len(s.ep.RelayURLs) > 0) {
		if secret, err = auth.LoadOrCreateSecret(cfg.RelaySecretFile); err != nil {
			return fmt.Errorf("load relay secret: %w", err)
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})
	s.grpc = newGRPCServer(cfg.limits)
	if cfg.opensStore() {
		if cfg.HA {
			pg, err := storeopen.OpenShared(ctx, cfg.Store, cfg.Logger)
			if err != nil {
				return err
			}
			s.store, s.feed, s.ping = pg, pg, pg.Ping
		} else if s.store, err = storeopen.Open(ctx, cfg.Store, cfg.DataDir, cfg.Logger); err != nil {
			return err
		}
	}
	if cfg.Components.Management {
		if err := s.startManagement(ctx, mux, secret); err != nil {
			return err
		}
	}
	if cfg.Components.Signal {
		key, err := s.signalKey(ctx)
		if err != nil {
			return err
		}
		sc := signal.Config{Key: key, Logger: cfg.Logger}
		if cfg.HA {
			if err := s.startCluster(ctx, mux, key); err != nil {
				return err
			}
			sc.Cluster = s.cluster
		}
		if s.mgmt != nil {
			// Only registered peers may open signal sessions; without
			// management in this process the per-source caps still apply.
			sc.Authorize = s.mgmt.IsPeerKey
		}
		s.sig = signal.NewServer(sc)
		s.sig.Register(s.grpc)
		if s.cluster != nil {
			s.cluster.sig = s.sig
		}
	}
	if cfg.Components.Relay {
		rel, err := relay.NewServer(relay.Config{InstanceURL: s.ep.RelayInstanceURL, Secret: secret, Logger: cfg.Logger})
		if err != nil {
			return fmt.Errorf("create relay: %w", err)
		}
		if err := rel.Start(); err != nil {
			return fmt.Errorf("start relay: %w", err)
		}
		s.relay = rel
		mux.Handle(relay.Path, rel)
	}

	if s.ping != nil && cfg.fenceProbe != nil {
		s.ping = cfg.fenceProbe
	}
	if s.ping != nil {
		var targets []fenced
		if s.mgmt != nil {
			targets = append(targets, s.mgmt)
		}
		if s.sig != nil {
			targets = append(targets, s.sig)
		}
		s.fence = newFencer(s.ping, cfg.fenceAfter, s.log.With("component", "fence"), targets...)
		s.fence.start()
	}
	if err := s.startMetrics(); err != nil {
		return err
	}
	maxPerSource := cfg.MaxConnsPerSource
	if maxPerSource < 0 {
		maxPerSource = 0
	}
	s.split = split.New(s.ln, split.Options{MaxPerSource: maxPerSource, Logger: s.log, TLS: tlsConf})
	s.http = &http.Server{
		Handler:           requestDeadlines(mux, cfg.limits),
		ReadHeaderTimeout: cfg.limits.readHeader,
		IdleTimeout:       cfg.limits.httpIdle,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	s.serving.Add(3)
	go func() {
		defer s.serving.Done()
		if err := s.split.Serve(); err != nil {
			s.serveErr = fmt.Errorf("accept on %s: %w", s.ln.Addr(), err)
			s.log.Error("listener failed", "err", err)
		}
		s.doneOnce.Do(func() { close(s.done) })
	}()
	// The two servers' Accept fails only when the split listener closes,
	// so their errors carry no news.
	go func() { defer s.serving.Done(); _ = s.grpc.Serve(s.split.HTTP2()) }()
	go func() { defer s.serving.Done(); _ = s.http.Serve(s.split.HTTP1()) }()
	return nil
}

// newGRPCServer applies the HTTP/2 limits (docs/server-limits.md): a
// connection must finish the handshake as fast as it must show its
// protocol (grpc's default allows 120 s); one without a stream for
// grpcIdle is sent GOAWAY and closed; a silent one is pinged and closed if
// the ping goes unanswered; streams per connection are capped.
func newGRPCServer(l limits) *grpc.Server {
	return grpc.NewServer(
		grpc.ConnectionTimeout(split.SniffTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: l.grpcIdle,
			Time:              l.pingTime,
			Timeout:           l.pingTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             l.minClientPing,
			PermitWithoutStream: true,
		}),
		grpc.MaxConcurrentStreams(l.maxStreams),
	)
}

// requestDeadlines bounds reading a whole request (a body dripped byte by
// byte would otherwise hold its connection forever) and writing its
// response, except on the relay path: the WebSocket upgrade hands the
// connection to the relay, which manages its own deadlines for as long as
// the session lasts. http.Server.ReadTimeout cannot make that exception.
func requestDeadlines(h http.Handler, l limits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.URL.Path != relay.Path {
			now := time.Now()
			_ = rc.SetReadDeadline(now.Add(l.body))
			_ = rc.SetWriteDeadline(now.Add(l.write))
		} else {
			// A write deadline left by an earlier request on this
			// keep-alive connection must not cut the upgrade.
			_ = rc.SetWriteDeadline(time.Time{})
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) startManagement(ctx context.Context, mux *http.ServeMux, secret []byte) error {
	mcfg := management.Config{
		Store:  s.instrumentStore(s.store),
		Logger: s.cfg.Logger,
		Server: management.ServerInfo{PublicURL: s.ep.PublicURL, STUNURLs: s.ep.STUNURLs, RelayURLs: s.ep.RelayURLs,
			RelayTokenTTL: s.cfg.RelayTokenTTL},
		LoginLimits: s.cfg.LoginLimits,
		Identity:    s.cfg.OIDC.identityConfig(),
	}
	if s.feed != nil {
		mcfg.HA = &management.HAConfig{Feed: s.feed}
	}
	if secret != nil {
		mcfg.MintRelayToken = func(peer keys.Public, exp time.Time) string { return auth.Mint(secret, peer, exp) }
	}
	svc, err := management.New(mcfg)
	if err != nil {
		return fmt.Errorf("create management: %w", err)
	}
	if err := svc.Start(ctx); err != nil {
		return fmt.Errorf("start management: %w", err)
	}
	s.mgmt = svc
	s.registerManagementMetrics()
	if err := s.bootstrap(ctx); err != nil {
		return err
	}
	api := grpcapi.New(svc, svc.ServerKey(), s.cfg.Logger)
	api.SetObserver(s.events)
	api.Register(s.grpc)
	mux.Handle("/api/", restapi.New(svc, s.cfg.Logger))
	uiOpts := ui.Options{Logger: s.cfg.Logger, TLS: s.cfg.TLS.Enabled(), OIDC: s.cfg.OIDC.dashboardConfig(s.ep.PublicURL)}
	if shared, ok := s.store.(ui.SharedState); ok && s.cfg.HA {
		uiOpts.Shared = shared // sessions and sign-ins served by every instance
	}
	mux.Handle("/ui/", ui.New(svc, uiOpts))
	return nil
}

// signalKey is management's key when it runs here, else the key file when
// configured, else the server key in the store (so signal and a separate
// management share it).
func (s *Server) signalKey(ctx context.Context) (keys.Private, error) {
	switch {
	case s.mgmt != nil:
		return s.mgmt.ServerKey(), nil
	case s.cfg.SignalKeyFile != "":
		k, _, err := keys.LoadOrCreatePrivate(s.cfg.SignalKeyFile)
		if err != nil {
			return keys.Private{}, fmt.Errorf("load signal key: %w", err)
		}
		return k, nil
	default:
		k, err := s.store.ServerKey(ctx)
		if err != nil {
			return keys.Private{}, fmt.Errorf("load server key: %w", err)
		}
		return k, nil
	}
}

// Stop ends the long-lived streams (Sync, signal, relay), lets in-flight
// requests finish within Config.ShutdownTimeout, then stops STUN and
// closes the store. It is idempotent and final; later calls wait for the
// first to finish.
func (s *Server) Stop() {
	s.mu.Lock()
	s.state = stateStopped
	s.mu.Unlock()
	s.stopOnce.Do(s.teardown)
}

func (s *Server) teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.metricsLn.Stop()
	s.stopTLS()
	if s.split != nil {
		s.split.Close()
	} else if s.ln != nil {
		_ = s.ln.Close()
	}
	shut := make(chan error, 1)
	if s.http != nil {
		go func() { shut <- s.http.Shutdown(ctx) }()
	} else {
		shut <- nil
	}
	if s.fence != nil {
		s.fence.stop()
	}
	if s.mgmt != nil {
		s.mgmt.Stop()
	}
	if s.sig != nil {
		s.sig.Stop()
	}
	if s.cluster != nil {
		s.cluster.stop()
	}
	if s.relay != nil {
		s.relay.Stop()
	}
	if s.grpc != nil {
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			s.log.Warn("gRPC connections still open at the shutdown deadline; closing them")
			forced := make(chan struct{})
			go func() { s.grpc.Stop(); close(forced) }()
			if s.split != nil {
				s.split.CloseConns() // also ends handshakes that stalled
			}
			<-forced
			<-stopped
		}
	}
	if err := <-shut; err != nil {
		s.log.Warn("graceful shutdown incomplete; closing connections", "err", err)
		_ = s.http.Close()
	}
	s.serving.Wait()
	if s.split != nil {
		s.split.CloseConns()
	}
	s.doneOnce.Do(func() { close(s.done) })
	if s.stun2 != nil {
		s.stun2.Stop()
	}
	if s.stun != nil {
		s.stun.Stop()
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.log.Warn("close store", "err", err)
		}
	}
	if s.ln != nil {
		s.log.Info("petrel-server stopped")
	}
}

// Done is closed when the server stops serving: after Stop, or when the
// listener fails (then Err says why and the caller should Stop).
func (s *Server) Done() <-chan struct{} { return s.done }

// Err waits for Done and reports why serving ended early (nil after Stop).
func (s *Server) Err() error {
	<-s.done
	return s.serveErr
}

// Addr is the TCP listener's address (nil before Start).
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Components are the parts this server runs.
func (s *Server) Components() Components { return s.cfg.Components }

// Endpoints are the URLs this server advertises (valid after Start).
func (s *Server) Endpoints() Endpoints { return s.ep }

// PublicURL is the URL agents use for management and signal.
func (s *Server) PublicURL() string { return s.ep.PublicURL }

// RelayURL is this process's relay instance URL ("" without the relay).
func (s *Server) RelayURL() string { return s.ep.RelayInstanceURL }

// STUNAddr is the STUN listener's address (nil without STUN).
func (s *Server) STUNAddr() net.Addr {
	if s.stun == nil {
		return nil
	}
	return s.stun.Addr()
}

// Management returns the management service (nil without that component).
func (s *Server) Management() *management.Service { return s.mgmt }

// Signal returns the signal service (nil when not running it).
func (s *Server) Signal() *signal.Server { return s.sig }

// AdminToken returns the admin token if this start created it.
func (s *Server) AdminToken() string { return s.adminToken }

// TokenFile is where the admin token of a new default account is written.
func (s *Server) TokenFile() string { return filepath.Join(s.cfg.DataDir, AdminTokenFile) }
