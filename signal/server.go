// Package signal is the Petrel signal server: it registers agents by proof of
// possession of their WireGuard key and routes end-to-end sealed envelopes
// between them by recipient public key. It never sees message contents.
//
// Imported by cmd/petrel-server (and tests). Agents use signal/client.
//
// Threading: each Connect stream runs in its gRPC handler goroutine (which
// is the only writer to the stream) plus one reader goroutine (which
// registers the peer and routes what it receives). Routing to another peer
// is a non-blocking push onto that peer's bounded outbound queue; a queue
// that overflows closes that peer's session instead of blocking the sender.
// All exported methods of Server are safe for concurrent use.
package signal

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/internal/keys"
	"petrel/proto/signalpb"
)

// Defaults for Config fields left zero.
const (
	DefaultHeartbeatInterval = 15 * time.Second
	DefaultRegisterTimeout   = 10 * time.Second
	DefaultQueueSize         = 1024
	DefaultMaxBody           = 64 << 10
	DefaultMaxBatch          = 256
	DefaultRate              = 2000
)

// Config configures a Server.
type Config struct {
	// Key is the server's X25519 private key (petrel-server passes the same
	// persisted key as management). Required.
	Key keys.Private
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// HeartbeatInterval is how often the server pings each stream; a stream
	// silent for three intervals is closed. Default 15 s.
	HeartbeatInterval time.Duration
	// RegisterTimeout bounds Hello → ChallengeResponse. Default 10 s.
	RegisterTimeout time.Duration
	// QueueSize bounds each session's outbound queue (envelopes + errors).
	// A session whose queue overflows is closed. Default 1024.
	QueueSize int
	// MaxBody is the largest accepted envelope body in bytes. Default 64 KiB.
	MaxBody int
	// MaxBatch is the most envelopes the server writes in one frame and
	// accepts in one client frame. Default 256.
	MaxBatch int
	// MaxSessions caps concurrently registered peers; 0 means no cap.
	MaxSessions int
	// Rate and Burst limit the envelopes one session may send per second
	// (token bucket); excess envelopes are answered with RATE_LIMITED, so
	// one peer cannot flood another's queue. Defaults 2000/s, burst 4000;
	// Rate < 0 disables the limit.
	Rate  float64
	Burst int
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.RegisterTimeout <= 0 {
		c.RegisterTimeout = DefaultRegisterTimeout
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Burst <= 0 {
		c.Burst = 2 * int(c.Rate)
		if c.Burst < c.MaxBatch {
			c.Burst = c.MaxBatch
		}
	}
}

// Stats is a snapshot of server counters.
type Stats struct {
	Connected     int    // registered sessions now
	Routed        uint64 // envelopes queued to a recipient
	Undeliverable uint64 // envelopes answered with NOT_CONNECTED
	Rejected      uint64 // envelopes answered with BAD_REQUEST / TOO_LARGE
	RateLimited   uint64 // envelopes answered with RATE_LIMITED
	AuthFailures  uint64 // registrations that failed the challenge
	Replaced      uint64 // sessions closed by a newer session of the same key
	Overflows     uint64 // sessions closed because their queue overflowed
	DeadStreams   uint64 // sessions closed by the heartbeat timeout
}

type counters struct {
	routed, undeliverable, rejected, rateLimited, authFailures, replaced, overflows, dead atomic.Uint64
}

// Server is the signal service. Create it with NewServer, expose it with
// Register, and end it with Stop.
type Server struct {
	signalpb.UnimplementedSignalServer

	cfg  Config
	log  *slog.Logger
	pub  keys.Public
	reg  *registry
	ctr  counters
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup // handlers and reader goroutines

	mu      sync.Mutex
	stopped bool
}

// NewServer returns a server; it holds no sockets (see Register).
func NewServer(cfg Config) *Server {
	cfg.setDefaults()
	return &Server{
		cfg:  cfg,
		log:  cfg.Logger.With("component", "signal"),
		pub:  cfg.Key.Public(),
		reg:  newRegistry(),
		stop: make(chan struct{}),
	}
}

// Register adds the Signal service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) { signalpb.RegisterSignalServer(r, s) }

// ServerOptions returns gRPC server options recommended for a listener
// that serves signal: fixed 1 MiB HTTP/2 windows, which turn off gRPC's BDP
// probing (otherwise a ping round trip per data frame on lightly loaded
// streams, about a third of the CPU per message at 1k clients).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.InitialWindowSize(1 << 20), grpc.InitialConnWindowSize(1 << 20)}
}

// PublicKey returns the server's public key (sent in every Challenge).
func (s *Server) PublicKey() keys.Public { return s.pub }

// Connected returns the number of registered sessions.
func (s *Server) Connected() int { return s.reg.len() }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connected:     s.reg.len(),
		Routed:        s.ctr.routed.Load(),
		Undeliverable: s.ctr.undeliverable.Load(),
		Rejected:      s.ctr.rejected.Load(),
		RateLimited:   s.ctr.rateLimited.Load(),
		AuthFailures:  s.ctr.authFailures.Load(),
		Replaced:      s.ctr.replaced.Load(),
		Overflows:     s.ctr.overflows.Load(),
		DeadStreams:   s.ctr.dead.Load(),
	}
}

// Stop closes every stream with status Unavailable, refuses new ones and
// waits for all stream goroutines to end. It is idempotent. It does not
// stop the gRPC server the service is registered on; call it before (or
// concurrently with) grpc.Server.GracefulStop, which otherwise waits for
// the long-lived signal streams forever.
func (s *Server) Stop() {
	s.once.Do(func() {
		s.mu.Lock()
		s.stopped = true
		close(s.stop)
		s.mu.Unlock()
	})
	s.wg.Wait()
}

// enter accounts for a new goroutine unless the server is stopping.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.wg.Add(1)
	return true
}

var errStopping = status.Error(codes.Unavailable, "signal server stopping")

// Connect implements signalpb.SignalServer.
func (s *Server) Connect(stream signalpb.Signal_ConnectServer) error {
	if !s.enter() {
		return errStopping
	}
	defer s.wg.Done()
	if !s.enter() { // for the reader goroutine
		return errStopping
	}
	sess := newSession(s.cfg.QueueSize)
	if s.cfg.Rate > 0 {
		sess.limit = rate.NewLimiter(rate.Limit(s.cfg.Rate), s.cfg.Burst)
	}
	regc := make(chan error, 1)
	readerDone := make(chan error, 1)
	go func() {
		defer s.wg.Done()
		s.readLoop(stream, sess, regc, readerDone)
	}()

	ctx := stream.Context()
	timer := time.NewTimer(s.cfg.RegisterTimeout)
	defer timer.Stop()
	select {
	case err := <-regc:
		if err != nil {
			return err
		}
	case <-timer.C:
		return status.Error(codes.DeadlineExceeded, "registration timed out")
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-s.stop:
		return errStopping
	}
	timer.Stop()

	if old, ok := s.reg.put(sess, s.cfg.MaxSessions); !ok {
		return status.Error(codes.ResourceExhausted, "too many signal sessions")
	} else if old != nil {
		s.ctr.replaced.Add(1)
		old.kill(status.Error(codes.Aborted, "replaced by a newer session of the same key"))
	}
	defer s.reg.remove(sess)
	log := s.log.With("peer", sess.key.Short())
	log.Debug("peer registered")

	err := s.supervise(stream, sess, readerDone)
	if st, ok := status.FromError(err); ok && st.Code() != codes.Canceled {
		log.Debug("session ended", "reason", st.Message())
	}
	return err
}

// supervise runs the session after registration: it starts the writer
// goroutine, checks liveness, and returns (which ends the stream and so
// unblocks a writer stuck on flow control) when anything ends the session.
func (s *Server) supervise(stream signalpb.Signal_ConnectServer, sess *session, readerDone <-chan error) error {
	if !s.enter() {
		return errStopping
	}
	quit := make(chan struct{})
	defer close(quit)
	pings := make(chan uint64, 1)
	writerDone := make(chan error, 1)
	go func() {
		defer s.wg.Done()
		writerDone <- s.writeLoop(stream, sess, pings, quit)
	}()

	interval := s.cfg.HeartbeatInterval
	tick := time.NewTicker(interval)
	defer tick.Stop()
	ctx := stream.Context()
	var seq uint64
	for {
		select {
		case <-tick.C:
			if time.Since(sess.lastRecvTime()) > 3*interval {
				s.ctr.dead.Add(1)
				return status.Error(codes.DeadlineExceeded, "heartbeat timeout")
			}
			seq++
			select {
			case pings <- seq:
			default: // the previous ping is still unsent
			}
		case <-sess.killed:
			return sess.killErr
		case err := <-readerDone:
			return err
		case err := <-writerDone:
			return err
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.stop:
			return errStopping
		}
	}
}

// writeLoop is the only writer to the stream after registration. It ends
// when a send fails or quit closes.
func (s *Server) writeLoop(stream signalpb.Signal_ConnectServer, sess *session, pings <-chan uint64, quit <-chan struct{}) error {
	err := stream.Send(&signalpb.ServerFrame{Kind: &signalpb.ServerFrame_Registered{
		Registered: &signalpb.Registered{HeartbeatIntervalMs: uint32(s.cfg.HeartbeatInterval / time.Millisecond)},
	}})
	if err != nil {
		return err
	}
	for {
		select {
		case it := <-sess.out:
			if err := stream.Send(s.batch(sess, it)); err != nil {
				return err
			}
		case seq := <-pings:
			if err := stream.Send(&signalpb.ServerFrame{Kind: &signalpb.ServerFrame_Ping{Ping: &signalpb.Ping{Seq: seq}}}); err != nil {
				return err
			}
		case <-quit:
			return nil
		}
	}
}

// batch builds one frame from first plus whatever else is queued, up to
// MaxBatch items.
func (s *Server) batch(sess *session, first outItem) *signalpb.ServerFrame {
	f := &signalpb.ServerFrame{}
	if n := len(sess.out); n > 0 && first.env != nil {
		f.Envelopes = make([]*signalpb.Envelope, 0, min(n+1, s.cfg.MaxBatch))
	}
	add := func(it outItem) {
		switch {
		case it.env != nil:
			f.Envelopes = append(f.Envelopes, it.env)
		case it.err != nil:
			f.Errors = append(f.Errors, it.err)
		case it.pong != nil:
			f.Kind = &signalpb.ServerFrame_Pong{Pong: it.pong}
		}
	}
	add(first)
	for n := 1; n < s.cfg.MaxBatch && f.Kind == nil; n++ {
		select {
		case it := <-sess.out:
			add(it)
		default:
			return f
		}
	}
	return f
}

// errFromReader maps a receive error to the handler's return value.
func errFromReader(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, errProtocol) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return status.Error(codes.Canceled, err.Error())
}
