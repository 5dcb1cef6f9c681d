package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"petrel/internal/keys"
	"petrel/management"
	"petrel/management/grpcapi"
	"petrel/management/restapi"
	"petrel/management/store"
	"petrel/management/store/storeopen"
	"petrel/relay"
	"petrel/relay/auth"
	"petrel/signal"
	"petrel/stun"
)

// shutdownTimeout bounds the graceful part of Stop.
const shutdownTimeout = 10 * time.Second

// server is one petrel-server process: a TCP listener serving gRPC
// (management, signal) and HTTP (REST under /api, relay WebSocket at
// /relay, /healthz) multiplexed on one port, plus STUN on UDP.
//
// startServer does not block; Stop is idempotent and final; Done is closed
// when the HTTP server stops serving (Err says why).
type server struct {
	cfg *runConfig
	log *slog.Logger
	ep  *endpoints

	ln    net.Listener
	hs    *http.Server
	gs    *grpc.Server
	st    store.Store
	svc   *management.Service
	sig   *signal.Server
	rel   *relay.Server
	stun  *stun.Server
	token string // admin token file path ("" without management)

	done     chan struct{}
	serveErr error
	stopOnce sync.Once
}

// startServer binds the sockets, starts the configured components and
// begins serving. On failure everything started so far is stopped.
func startServer(ctx context.Context, cfg *runConfig, log *slog.Logger) (_ *server, err error) {
	s := &server{cfg: cfg, log: log, done: make(chan struct{})}
	defer func() {
		if err != nil {
			close(s.done)
			s.Stop()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	var stunAddr net.Addr
	if cfg.has(compSTUN) {
		s.stun = stun.NewServer(cfg.STUNListen, log)
		if err := s.stun.Start(); err != nil {
			s.stun = nil
			return nil, fmt.Errorf("start stun on %s: %w", cfg.STUNListen, err)
		}
		stunAddr = s.stun.Addr()
	}
	if s.ep, err = deriveEndpoints(cfg, s.ln.Addr(), stunAddr, osHostname); err != nil {
		return nil, err
	}
	for _, w := range s.ep.Warnings {
		log.Warn(w)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})
	s.gs = grpc.NewServer()

	if err := s.startManagementAndSignal(ctx, mux); err != nil {
		return nil, err
	}
	if cfg.has(compRelay) {
		secret, err := auth.LoadOrCreateSecret(cfg.RelaySecretFile)
		if err != nil {
			return nil, fmt.Errorf("load relay secret: %w", err)
		}
		rel, err := relay.NewServer(relay.Config{InstanceURL: s.ep.RelayInstanceURL, Secret: secret, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("create relay: %w", err)
		}
		if err := rel.Start(); err != nil {
			return nil, fmt.Errorf("start relay: %w", err)
		}
		s.rel = rel
		mux.Handle(relay.Path, rel)
	}

	s.hs = &http.Server{
		Handler:           s.demux(mux),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		Protocols:         new(http.Protocols),
	}
	// HTTP/1.1 for REST and the relay WebSocket; HTTP/2 with prior
	// knowledge (h2c) for gRPC, on the same port.
	s.hs.Protocols.SetHTTP1(true)
	s.hs.Protocols.SetUnencryptedHTTP2(true)
	go func() {
		defer close(s.done)
		if err := s.hs.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = fmt.Errorf("serve %s: %w", s.ln.Addr(), err)
		}
	}()
	log.Info("petrel-server started", "listen", s.ln.Addr().String(), "components", strings.Join(cfg.Components, ","))
	return s, nil
}

// startManagementAndSignal opens the store when management or signal runs
// (the server key lives there) and starts those components.
func (s *server) startManagementAndSignal(ctx context.Context, mux *http.ServeMux) error {
	cfg := s.cfg
	if !cfg.has(compManagement) && !cfg.has(compSignal) {
		return nil
	}
	st, err := storeopen.Open(ctx, cfg.Store, cfg.DataDir, s.log)
	if err != nil {
		return err
	}
	s.st = st
	var serverKey keys.Private
	if cfg.has(compManagement) {
		mcfg := management.Config{
			Store: st, Logger: s.log,
			Server: management.ServerInfo{PublicURL: s.ep.Public.String(), STUNURLs: s.ep.STUNURLs, RelayURLs: s.ep.RelayURLs},
		}
		if len(s.ep.RelayURLs) > 0 {
			secret, err := auth.LoadOrCreateSecret(cfg.RelaySecretFile)
			if err != nil {
				return fmt.Errorf("load relay secret: %w", err)
			}
			mcfg.MintRelayToken = func(peer keys.Public, exp time.Time) string { return auth.Mint(secret, peer, exp) }
		}
		svc, err := management.New(mcfg)
		if err != nil {
			return err
		}
		if err := svc.Start(ctx); err != nil {
			return fmt.Errorf("start management: %w", err)
		}
		s.svc = svc
		if err := s.bootstrap(ctx); err != nil {
			return err
		}
		serverKey = svc.ServerKey()
		grpcapi.New(svc, serverKey, s.log).Register(s.gs)
		mux.Handle("/api/", restapi.New(svc, s.log))
	} else if serverKey, err = st.ServerKey(ctx); err != nil {
		return fmt.Errorf("load server key: %w", err)
	}
	if cfg.has(compSignal) {
		s.sig = signal.NewServer(signal.Config{Key: serverKey, Logger: s.log})
		s.sig.Register(s.gs)
	}
	return nil
}

// bootstrap creates the default account on an empty store and writes its
// admin token to DATA_DIR/admin-token (0600, atomically).
func (s *server) bootstrap(ctx context.Context) error {
	s.token = filepath.Join(s.cfg.DataDir, adminTokenFile)
	token, created, err := s.svc.Bootstrap(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap account: %w", err)
	}
	if created {
		if err := keys.WriteFileAtomic(s.token, []byte(token+"\n"), 0o600); err != nil {
			return fmt.Errorf("write admin token: %w", err)
		}
		s.log.Info("created the default account; admin token written", "path", s.token)
		return nil
	}
	if _, err := os.Stat(s.token); err != nil {
		s.log.Warn("the store has an account but the admin token file is missing; use a saved copy of the token", "path", s.token)
	}
	return nil
}

// demux sends gRPC (HTTP/2, content-type application/grpc*) to the gRPC
// server and everything else to mux.
func (s *server) demux(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			s.gs.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Addr is the bound TCP address.
func (s *server) Addr() net.Addr { return s.ln.Addr() }

// Done is closed when the server stops serving.
func (s *server) Done() <-chan struct{} { return s.done }

// Err reports why serving stopped early (nil after a normal Stop).
func (s *server) Err() error {
	<-s.done
	return s.serveErr
}

// Stop ends long-lived streams (Sync, signal, relay), shuts the HTTP server
// down gracefully within shutdownTimeout, then stops STUN and closes the
// store. It is idempotent.
func (s *server) Stop() {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		shut := make(chan error, 1)
		if s.hs != nil {
			go func() { shut <- s.hs.Shutdown(ctx) }()
		} else {
			shut <- nil
			if s.ln != nil {
				_ = s.ln.Close()
			}
		}
		if s.svc != nil {
			s.svc.Stop()
		}
		if s.sig != nil {
			s.sig.Stop()
		}
		if s.rel != nil {
			s.rel.Stop()
		}
		if s.gs != nil {
			s.gs.Stop()
		}
		if err := <-shut; err != nil {
			s.log.Warn("graceful shutdown incomplete; closing connections", "err", err)
			_ = s.hs.Close()
		}
		<-s.done
		if s.stun != nil {
			s.stun.Stop()
		}
		if s.st != nil {
			if err := s.st.Close(); err != nil {
				s.log.Warn("close store", "err", err)
			}
		}
		s.log.Info("petrel-server stopped")
	})
}

// printBanner writes the served URLs and the token location to w.
func (s *server) printBanner(w io.Writer) {
	pub := s.ep.Public.String()
	fmt.Fprintf(w, "petrel-server listening on %s (components: %s)\n", s.ln.Addr(), strings.Join(s.cfg.Components, ","))
	if s.svc != nil {
		fmt.Fprintf(w, "  management (gRPC): %s\n", pub)
		fmt.Fprintf(w, "  REST API:          %s/api\n", pub)
	}
	if s.sig != nil {
		fmt.Fprintf(w, "  signal (gRPC):     %s\n", pub)
	}
	if s.rel != nil {
		fmt.Fprintf(w, "  relay:             %s (WebSocket %s%s)\n", s.ep.RelayInstanceURL, pub, relay.Path)
	}
	if s.svc != nil && len(s.ep.RelayURLs) > 0 {
		fmt.Fprintf(w, "  relays advertised: %s\n", strings.Join(s.ep.RelayURLs, " "))
	}
	if s.stun != nil {
		fmt.Fprintf(w, "  STUN:              %s (udp %s)\n", strings.Join(s.ep.STUNURLs, " "), s.stun.Addr())
	}
	if s.token != "" {
		fmt.Fprintf(w, "  admin token:       %s\n", s.token)
	}
}
