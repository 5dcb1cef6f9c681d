// Package relay is the Petrel relay server: it forwards opaque WireGuard
// packets between authenticated peers over WebSocket (binary messages, one
// relay frame each, see package relay/frame) on path /relay.
//
// A Server is an http.Handler; petrel-server mounts it on its shared listener
// at /relay, or StartOn runs it standalone on its own listener. Several
// instances form a pool: each announces its own instance URL in auth-ok, and
// a peer may be connected to several instances at once (home on one, foreign
// on others). A transport frame is delivered to the destination's connection
// on this instance; if the destination is not connected here the sender gets
// an error frame naming it (rate limited), never a silent drop.
//
// Who may import it: cmd/petrel-server, tests and benches. Agents use
// relay/client.
//
// Threading: ServeHTTP is called by net/http on its goroutines; each
// connection then runs a read goroutine (the ServeHTTP goroutine) and a write
// goroutine. A source's read goroutine writes a packet straight to the
// destination's socket when that connection is idle (nothing queued, nobody
// writing, not congested), corking it while more frames are already
// buffered; otherwise the packet goes to the destination's bounded queue,
// drained by its write goroutine (a full queue drops, as a congested link
// would). Start, Stop and Wait may be called from any goroutine; Stop is
// idempotent and final.
//
// HTTP: the WebSocket upgrade needs HTTP/1.1 and a hijackable
// ResponseWriter; a listener that also serves HTTP/2 (TLS ALPN or cleartext
// prior knowledge) keeps serving HTTP/1.1 upgrades, which is all the relay
// client uses.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"petrel/internal/keys"
	"petrel/relay/auth"
	"petrel/relay/frame"
)

// Path is the HTTP path the relay is served on.
const Path = "/relay"

// Config configures a Server. Zero limits take the documented defaults.
type Config struct {
	// InstanceURL is this instance's own URL, announced in auth-ok, e.g.
	// "rel://eu-1.relay.lab.test:8080" (rel:// = ws, rels:// = wss).
	InstanceURL string
	// Secret is the pool's shared HMAC secret (at least auth.SecretLen bytes).
	Secret []byte
	Logger *slog.Logger

	MaxConns      int           // concurrent connections; default 100000
	AuthTimeout   time.Duration // time allowed to send the auth frame; default 10 s
	IdleTimeout   time.Duration // close a connection silent this long; default 2 min
	SendQueue     int           // per-connection outbound queue in frames; default 1024
	BadFrameRate  float64       // tolerated bad frames per second per connection; default 5
	BadFrameBurst int           // burst of bad frames tolerated; default 20
	// UnreachableRate bounds "peer unreachable" error frames per second per
	// connection (default 10); repeats for one destination are sent at most
	// once per second.
	UnreachableRate float64

	// Now is the clock for token expiry; default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 100000
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = 10 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 1024
	}
	if c.BadFrameRate <= 0 {
		c.BadFrameRate = 5
	}
	if c.BadFrameBurst <= 0 {
		c.BadFrameBurst = 20
	}
	if c.UnreachableRate <= 0 {
		c.UnreachableRate = 10
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// ValidateURL checks a relay URL (rel:// or rels:// with a host).
func ValidateURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("parse relay url: %w", err)
	}
	if u.Scheme != "rel" && u.Scheme != "rels" {
		return fmt.Errorf("relay url %q: scheme must be rel or rels", s)
	}
	if u.Host == "" {
		return fmt.Errorf("relay url %q: missing host", s)
	}
	return nil
}

type state int

const (
	stateNew state = iota
	stateRunning
	stateStopped
)

// Server is a relay instance. Create it with NewServer.
type Server struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	state  state
	conns  map[*conn]struct{}
	httpSv *http.Server
	ln     net.Listener

	authSeq atomic.Uint64 // conn.seq
	peersMu sync.RWMutex
	peers   map[keys.Public]*conn

	nconns  atomic.Int64
	wg      sync.WaitGroup // connection handlers and background loops
	stopped chan struct{}

	metrics metrics
	pool    frame.BufPool
}

func (s *Server) bufs() *frame.BufPool { return &s.pool }

// metrics are cumulative counters (read them with Stats).
type metrics struct {
	Accepted, AuthFailed, Forwarded, Dropped, Unreachable, BadFrames, Closed atomic.Int64
	ForwardedBytes                                                           atomic.Int64 // WireGuard payload of Forwarded frames
}

// Stats is a snapshot of the server counters.
type Stats struct {
	Conns                                                            int64
	Accepted, AuthFailed, Forwarded, Dropped, Unreachable, BadFrames int64
	ForwardedBytes                                                   int64 // payload bytes of the Forwarded frames
}

// NewServer validates cfg and returns a stopped server; call Start (or
// StartOn) before serving.
func NewServer(cfg Config) (*Server, error) {
	if err := ValidateURL(cfg.InstanceURL); err != nil {
		return nil, err
	}
	if len(cfg.Secret) < auth.SecretLen {
		return nil, fmt.Errorf("check relay secret: %w", auth.ErrWeakSecret)
	}
	cfg.setDefaults()
	cfg.Secret = append([]byte(nil), cfg.Secret...)
	return &Server{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "relay", "instance", cfg.InstanceURL),
		conns:   make(map[*conn]struct{}),
		peers:   make(map[keys.Public]*conn),
		stopped: make(chan struct{}),
	}, nil
}

// InstanceURL returns the URL this instance announces.
func (s *Server) InstanceURL() string { return s.cfg.InstanceURL }

// Start makes the server accept connections (through ServeHTTP) and starts
// its idle sweeper. It does not block.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return errors.New("start relay: already started")
	}
	s.state = stateRunning
	s.wg.Add(1)
	go s.sweep()
	return nil
}

// StartOn starts the server and serves it standalone on ln (path /relay);
// Stop closes ln.
func (s *Server) StartOn(ln net.Listener) error {
	if err := s.Start(); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(Path, s)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	s.mu.Lock()
	s.httpSv, s.ln = hs, ln
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("relay listener stopped", "err", err)
		}
	}()
	s.log.Info("relay listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the standalone listener's address, or nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Stop closes the standalone listener and every connection (clients see a
// going-away close and reconnect elsewhere or later) and waits for all
// goroutines. It is idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	if s.state == stateStopped {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.state = stateStopped
	close(s.stopped)
	hs := s.httpSv
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if hs != nil {
		hs.Close() // closes the listener; hijacked websockets are ours to close
	}
	for _, c := range conns {
		c.closeWith(websocket.StatusGoingAway, "relay shutting down")
	}
	s.wg.Wait()
}

// Wait blocks until Stop has completed.
func (s *Server) Wait() {
	<-s.stopped
	s.wg.Wait()
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	m := &s.metrics
	return Stats{
		Conns: s.nconns.Load(), Accepted: m.Accepted.Load(), AuthFailed: m.AuthFailed.Load(),
		Forwarded: m.Forwarded.Load(), Dropped: m.Dropped.Load(), Unreachable: m.Unreachable.Load(),
		BadFrames: m.BadFrames.Load(), ForwardedBytes: m.ForwardedBytes.Load(),
	}
}

// ServeHTTP upgrades the request to a WebSocket and runs the relay protocol
// on it until the connection ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.admit() {
		http.Error(w, "relay not running or full", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	defer s.nconns.Add(-1)
	hw := &hijackWriter{ResponseWriter: w}
	ws, err := websocket.Accept(hw, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	cc, br := hw.hijacked()
	c := newConn(s, ws, r.RemoteAddr, cc, br)
	if !s.track(c) {
		c.closeWith(websocket.StatusGoingAway, "relay shutting down")
		return
	}
	defer s.untrack(c)
	s.metrics.Accepted.Add(1)
	c.serve()
}

// admit reserves a connection slot and a WaitGroup count.
func (s *Server) admit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning {
		return false
	}
	if s.nconns.Add(1) > int64(s.cfg.MaxConns) {
		s.nconns.Add(-1)
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.peersMu.Lock()
	if s.peers[c.peer] == c {
		delete(s.peers, c.peer)
	}
	s.peersMu.Unlock()
}

// register makes c the connection of its peer on this instance, replacing
// (and closing) an older one: a client that reconnects before the relay
// noticed its old connection died must win. "Older" is authentication
// order: if a newer connection registered first, c is closed instead and
// register reports false.
func (s *Server) register(c *conn) bool {
	s.peersMu.Lock()
	old := s.peers[c.peer]
	if old != nil && old != c && old.seq > c.seq {
		s.peersMu.Unlock()
		c.closeWith(websocket.StatusPolicyViolation, "replaced by a newer connection")
		return false
	}
	s.peers[c.peer] = c
	s.peersMu.Unlock()
	if old != nil && old != c {
		old.closeWith(websocket.StatusPolicyViolation, "replaced by a newer connection")
	}
	return true
}

func (s *Server) lookup(k keys.Public) *conn {
	s.peersMu.RLock()
	c := s.peers[k]
	s.peersMu.RUnlock()
	return c
}

// sweep closes connections that have been silent for IdleTimeout.
func (s *Server) sweep() {
	defer s.wg.Done()
	period := s.cfg.IdleTimeout / 4
	if period < 100*time.Millisecond {
		period = 100 * time.Millisecond
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-s.stopped:
			return
		case now := <-t.C:
			var idle []*conn
			s.mu.Lock()
			for c := range s.conns {
				if now.Sub(time.Unix(0, c.lastRead.Load())) > s.cfg.IdleTimeout {
					idle = append(idle, c)
				}
			}
			s.mu.Unlock()
			for _, c := range idle {
				c.closeWith(websocket.StatusPolicyViolation, "idle")
			}
		}
	}
}

// background returns a context without a Done channel: coder/websocket then
// skips its per-call timer; connections are unblocked by closing them.
func background() context.Context { return context.Background() }
