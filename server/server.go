// Package server assembles petrel-server's control plane: management (gRPC
// for agents, REST for admins), signal, relay and STUN, on one TCP listener
// (gRPC by HTTP/2 preface, HTTP/1.1 for REST and the relay WebSocket) plus
// STUN on UDP.
//
// Imported by cmd/petrel-server and by integration tests that need a real
// control plane in-process. Start, Stop and the accessors are safe for
// concurrent use; Stop is idempotent.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"petrel/internal/keys"
	"petrel/management"
	"petrel/management/grpcapi"
	"petrel/management/model"
	"petrel/management/restapi"
	"petrel/management/store"
	"petrel/management/store/storeopen"
	"petrel/relay"
	"petrel/relay/auth"
	"petrel/signal"
	"petrel/stun"
)

// Components selects the parts a process runs.
type Components struct {
	Management, Signal, Relay, STUN bool
}

// AllComponents runs everything.
var AllComponents = Components{true, true, true, true}

// ParseComponents parses "management,signal,relay,stun".
func ParseComponents(s string) (Components, error) {
	var c Components
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(strings.ToLower(p)) {
		case "management", "mgmt":
			c.Management = true
		case "signal":
			c.Signal = true
		case "relay":
			c.Relay = true
		case "stun":
			c.STUN = true
		case "":
		default:
			return c, fmt.Errorf("unknown component %q (want management, signal, relay, stun)", p)
		}
	}
	if c == (Components{}) {
		return c, errors.New("no components selected")
	}
	return c, nil
}

// Config is petrel-server's validated configuration.
type Config struct {
	DataDir          string
	Listen           string // host:port for gRPC + HTTP
	STUNListen       string // host:port (UDP); "" = ":3478"
	Store            string // "sqlite" or "postgres://..."
	PublicURL        string // agents' management + signal URL; default derived from Listen
	RelayURLs        []string
	RelaySecretFile  string // default DATA_DIR/relay-secret
	RelayInstanceURL string // default rel://<public host>:<port>
	STUNURLs         []string
	Components       Components
	Logger           *slog.Logger
	// RelayTokenTTL overrides the relay token lifetime (tests).
	RelayTokenTTL time.Duration
}

// Server is a running control plane.
type Server struct {
	cfg Config
	log *slog.Logger

	mu         sync.Mutex
	stopped    bool
	ln         net.Listener
	split      *splitListener
	grpc       *grpc.Server
	http       *http.Server
	store      store.Store
	mgmt       *management.Service
	sig        *signal.Server
	relay      *relay.Server
	stun       *stun.Server
	adminToken string // only when created by this start
	publicURL  string
	relayURL   string
	wg         sync.WaitGroup
}

// New validates cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("--data-dir is required")
	}
	if cfg.Listen == "" {
		return nil, errors.New("--listen is required")
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("--listen %q: want HOST:PORT", cfg.Listen)
	}
	if cfg.Components == (Components{}) {
		cfg.Components = AllComponents
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--public-url %q: want http(s)://host:port", cfg.PublicURL)
		}
	}
	for _, r := range append([]string{cfg.RelayInstanceURL}, cfg.RelayURLs...) {
		if r == "" {
			continue
		}
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "rel" && u.Scheme != "rels") || u.Host == "" {
			return nil, fmt.Errorf("relay URL %q: want rel://host:port or rels://host:port", r)
		}
	}
	if cfg.RelaySecretFile == "" {
		cfg.RelaySecretFile = filepath.Join(cfg.DataDir, "relay-secret")
	}
	return &Server{cfg: cfg, log: cfg.Logger.With("component", "server")}, nil
}

// Start opens the store and the listeners and starts every component. On
// error everything started is stopped.
func (s *Server) Start(ctx context.Context) (err error) {
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	s.ln, err = net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	s.publicURL = s.cfg.PublicURL
	if s.publicURL == "" {
		s.publicURL = "http://" + advertisedHostPort(s.ln.Addr().(*net.TCPAddr))
	}
	pu, _ := url.Parse(s.publicURL)
	s.relayURL = s.cfg.RelayInstanceURL
	if s.relayURL == "" {
		s.relayURL = "rel://" + pu.Host
	}
	relayURLs := s.cfg.RelayURLs
	if len(relayURLs) == 0 && s.cfg.Components.Relay {
		relayURLs = []string{s.relayURL}
	}
	if s.cfg.Components.STUN {
		s.stun = stun.NewServer(orDefault(s.cfg.STUNListen, ":3478"), s.cfg.Logger)
		if err := s.stun.Start(); err != nil {
			return fmt.Errorf("stun: %w", err)
		}
	}
	stunURLs := s.cfg.STUNURLs
	if len(stunURLs) == 0 && s.cfg.Components.STUN {
		port := fmt.Sprint(s.stun.Addr().(*net.UDPAddr).Port)
		stunURLs = []string{"stun:" + net.JoinHostPort(pu.Hostname(), port)}
	}

	var secret []byte
	if s.cfg.Components.Relay || s.cfg.Components.Management {
		if secret, err = auth.LoadOrCreateSecret(s.cfg.RelaySecretFile); err != nil {
			return fmt.Errorf("relay secret: %w", err)
		}
	}
	s.grpc = grpc.NewServer()
	mux := http.NewServeMux()
	var serverKey keys.Private
	if s.cfg.Components.Management {
		if err := s.startManagement(ctx, mux, secret, relayURLs, stunURLs); err != nil {
			return err
		}
		serverKey = s.mgmt.ServerKey()
	}
	if s.cfg.Components.Signal {
		if serverKey.IsZero() {
			if serverKey, _, err = keys.LoadOrCreatePrivate(filepath.Join(s.cfg.DataDir, "signal.key")); err != nil {
				return fmt.Errorf("signal key: %w", err)
			}
		}
		s.sig = signal.NewServer(signal.Config{Key: serverKey, Logger: s.cfg.Logger})
		s.sig.Register(s.grpc)
	}
	if s.cfg.Components.Relay {
		s.relay, err = relay.NewServer(relay.Config{InstanceURL: s.relayURL, Secret: secret, Logger: s.cfg.Logger})
		if err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		if err := s.relay.Start(); err != nil {
			return fmt.Errorf("start relay: %w", err)
		}
		mux.Handle("/relay", s.relay)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s.split = newSplitListener(s.ln)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.split.serve() }()
	go func() { defer s.wg.Done(); _ = s.grpc.Serve(s.split.h2) }()
	go func() { defer s.wg.Done(); _ = s.http.Serve(s.split.h1) }()
	return nil
}

func (s *Server) startManagement(ctx context.Context, mux *http.ServeMux, secret []byte, relayURLs, stunURLs []string) error {
	st, err := storeopen.Open(ctx, s.cfg.Store, s.cfg.DataDir, s.cfg.Logger)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	s.store = st
	s.mgmt, err = management.New(management.Config{
		Store:  st,
		Logger: s.cfg.Logger,
		Server: management.ServerInfo{PublicURL: s.publicURL, STUNURLs: stunURLs, RelayURLs: relayURLs,
			RelayTokenTTL: s.cfg.RelayTokenTTL},
		MintRelayToken: func(peer keys.Public, exp time.Time) string { return auth.Mint(secret, peer, exp) },
	})
	if err != nil {
		return fmt.Errorf("management: %w", err)
	}
	if err := s.mgmt.Start(ctx); err != nil {
		return fmt.Errorf("start management: %w", err)
	}
	tok, created, err := s.mgmt.Bootstrap(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap account: %w", err)
	}
	if created {
		if err := s.addDefaultPolicy(ctx); err != nil {
			return err
		}
		s.adminToken = tok
		if err := keys.WriteFileAtomic(s.TokenFile(), []byte(tok+"\n"), 0o600); err != nil {
			return fmt.Errorf("write admin token: %w", err)
		}
	}
	grpcapi.New(s.mgmt, s.mgmt.ServerKey(), s.cfg.Logger).Register(s.grpc)
	mux.Handle("/api/", restapi.New(s.mgmt, s.cfg.Logger))
	return nil
}

// Stop stops every component and closes the store. Idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.mu.Unlock()
	if s.split != nil {
		s.split.close()
	} else if s.ln != nil {
		s.ln.Close()
	}
	if s.relay != nil {
		s.relay.Stop()
	}
	if s.sig != nil {
		s.sig.Stop()
	}
	if s.mgmt != nil {
		s.mgmt.Stop()
	}
	if s.grpc != nil {
		s.grpc.Stop()
	}
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.http.Shutdown(ctx)
		cancel()
		_ = s.http.Close()
	}
	if s.stun != nil {
		s.stun.Stop()
	}
	s.wg.Wait()
	if s.store != nil {
		_ = s.store.Close()
	}
}

// Addr is the TCP listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// PublicURL is the URL agents use.
func (s *Server) PublicURL() string { return s.publicURL }

// RelayURL is this process's relay instance URL.
func (s *Server) RelayURL() string { return s.relayURL }

// STUNAddr is the STUN listener's address (nil without STUN).
func (s *Server) STUNAddr() net.Addr {
	if s.stun == nil {
		return nil
	}
	return s.stun.Addr()
}

// Management returns the management service (nil without that component).
func (s *Server) Management() *management.Service { return s.mgmt }

// AdminToken returns the admin token if this start created it.
func (s *Server) AdminToken() string { return s.adminToken }

// TokenFile is where the admin token is written.
func (s *Server) TokenFile() string { return filepath.Join(s.cfg.DataDir, "admin-token") }

func advertisedHostPort(a *net.TCPAddr) string {
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		} else {
			host = "127.0.0.1"
		}
	}
	return net.JoinHostPort(host, fmt.Sprint(a.Port))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// addDefaultPolicy lets every peer of a new default account reach every
// other (All <-> All), as users of a mesh VPN expect on first start; admins
// tighten or disable it through the API.
func (s *Server) addDefaultPolicy(ctx context.Context) error {
	acct := s.mgmt.Accounts()[0]
	snap, err := s.mgmt.Snapshot(acct)
	if err != nil {
		return fmt.Errorf("read default account: %w", err)
	}
	var all string
	for id, g := range snap.Groups {
		if g.Name == model.AllGroupName {
			all = id
		}
	}
	_, err = s.mgmt.Put(ctx, acct, &model.Policy{Name: "Default", Description: "every peer reaches every peer",
		Enabled: true, Rules: []model.PolicyRule{{Name: "all-to-all", Sources: []string{all}, Destinations: []string{all},
			Protocol: model.ProtoAll, Bidirectional: true, Action: model.ActionAccept}}})
	if err != nil {
		return fmt.Errorf("create default policy: %w", err)
	}
	return nil
}
