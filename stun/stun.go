// Package stun is Petrel's STUN binding server (RFC 5389 Binding, plus
// classic RFC 3489 Binding requests): it answers Binding requests on UDP
// with XOR-MAPPED-ADDRESS (MAPPED-ADDRESS for classic requests) so agents
// learn their server-reflexive address, answers 420 Unknown Attribute to
// requests with comprehension-required attributes it does not understand,
// and silently ignores everything else. Answers are rate limited per source
// IP and never much larger than the request, so the server is a poor
// reflector for spoofed-source floods (docs/security.md).
//
// Who may import it: cmd/petrel-server (via server) and tests.
//
// Threading: one goroutine reads the socket and answers inline. Start does not
// block; Stop is idempotent and waits for that goroutine.
package stun

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	pstun "github.com/pion/stun/v4"

	"petrel/internal/ratelimit"
)

// DefaultAddr is the default listen address.
const DefaultAddr = ":3478"

// Defaults for Config fields left zero.
const (
	// DefaultRate and DefaultBurst bound the answers to one source IP: an
	// agent asks a few times a minute (pion's UDP mux caches its mapped
	// address), so even a large NAT of agents stays far below.
	DefaultRate  = 20
	DefaultBurst = 100
	// DefaultMaxSources bounds the per-source table (about 100 bytes a
	// source); beyond it the least recently seen source is forgotten.
	DefaultMaxSources = 65536
)

// Config configures a Server.
type Config struct {
	// Addr is the UDP listen address ("" = DefaultAddr).
	Addr string
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Rate (answers per second) and Burst limit the answers to one source
	// IP; requests over the limit are dropped silently. Defaults
	// DefaultRate and DefaultBurst; Rate < 0 disables the limit.
	Rate  float64
	Burst int
	// MaxSources bounds the number of source IPs tracked. Default
	// DefaultMaxSources.
	MaxSources int
	// Now is the clock of the rate limiter (tests); nil means time.Now.
	Now func() time.Time
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	Answered    uint64 // answers sent (success and 420)
	RateLimited uint64 // Binding requests dropped by the per-source limit
}

// Server is a STUN binding server. Create it with New or NewServer.
type Server struct {
	addr  string
	log   *slog.Logger
	limit *ratelimit.Limiter[netip.Addr] // nil: unlimited

	answered, rateLimited atomic.Uint64

	mu      sync.Mutex
	started bool
	conn    net.PacketConn
	done    chan struct{}
}

// NewServer returns a server with default limits that will listen on addr
// ("" = DefaultAddr).
func NewServer(addr string, log *slog.Logger) *Server {
	return New(Config{Addr: addr, Logger: log})
}

// New returns a server configured by cfg; nothing listens until Start.
func New(cfg Config) *Server {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = DefaultMaxSources
	}
	s := &Server{addr: cfg.Addr, log: cfg.Logger.With("component", "stun"), done: make(chan struct{})}
	if cfg.Rate > 0 {
		s.limit = ratelimit.New[netip.Addr](cfg.Rate, cfg.Burst, cfg.MaxSources)
		if cfg.Now != nil {
			s.limit.WithClock(cfg.Now)
		}
	}
	return s
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{Answered: s.answered.Load(), RateLimited: s.rateLimited.Load()}
}

// Start binds the UDP socket and starts answering. It does not block.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("start stun: already started")
	}
	c, err := net.ListenPacket("udp", s.addr)
	if err != nil {
		return fmt.Errorf("listen stun: %w", err)
	}
	s.started, s.conn = true, c
	go s.serve(c)
	s.log.Info("stun listening", "addr", c.LocalAddr().String())
	return nil
}

// Addr returns the bound address (nil before Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	return s.conn.LocalAddr()
}

// Stop closes the socket and waits for the server goroutine. Idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	c := s.conn
	started := s.started
	s.conn = nil
	s.mu.Unlock()
	if c != nil {
		c.Close()
	}
	if started {
		<-s.done
	}
}

func (s *Server) serve(c net.PacketConn) {
	defer close(s.done)
	buf := make([]byte, 1500)
	var resp pstun.Message
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("stun read failed", "err", err)
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		if out := s.answer(&resp, buf[:n], ua); out != nil {
			if _, err := c.WriteTo(out, from); err != nil {
				s.log.Debug("stun write failed", "to", from.String(), "err", err)
			}
		}
	}
}

// answer applies the per-source limit to what looks like a Binding request
// (garbage costs the source no tokens) and builds the answer, or nil.
func (s *Server) answer(resp *pstun.Message, b []byte, from *net.UDPAddr) []byte {
	if !isBindingRequest(b) {
		return nil
	}
	if ok, _ := s.limit.Allow(from.AddrPort().Addr().Unmap()); !ok {
		if s.rateLimited.Add(1)%10000 == 1 {
			s.log.Info("stun requests over the per-source limit dropped", "from", from.IP.String(), "total", s.rateLimited.Load())
		}
		return nil
	}
	out := Respond(resp, b, from)
	if out != nil {
		s.answered.Add(1)
	}
	return out
}
