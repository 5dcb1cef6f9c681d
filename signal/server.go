// Package signal is the Petrel signal server: it registers agents by proof of
// possession of their WireGuard key and routes end-to-end sealed envelopes
// between them by recipient public key. It never sees message contents.
//
// Imported by cmd/petrel-server (and tests). Agents use signal/client.
//
// Threading: each Connect stream runs in its gRPC handler goroutine (which
// supervises the session) plus one reader goroutine (which registers the
// peer and routes what it receives) and, once registered, one writer
// goroutine (the only writer to the stream). Routing to another peer is a
// non-blocking push onto that peer's bounded outbound queue; when the queue,
// or the sender's share of it, is full the sender is told to slow down and
// the recipient is left alone (docs/security.md). All exported methods of
// Server are safe for concurrent use.
package signal

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/internal/keys"
	"petrel/internal/ratelimit"
	"petrel/proto/signalpb"
)

// Defaults for Config fields left zero.
const (
	DefaultHeartbeatInterval = 15 * time.Second
	DefaultRegisterTimeout   = 10 * time.Second
	DefaultQueueSize         = 1024
	DefaultQueueBytes        = 4 << 20
	DefaultMaxBody           = 64 << 10
	DefaultMaxBatch          = 256
	DefaultMaxFrame          = 1 << 20
	DefaultRate              = 2000
	DefaultByteRate          = 1 << 20
	DefaultByteBurst         = 4 << 20
	DefaultMaxSessions       = 10000
	// DefaultMaxSessionsPerSource matches petrel-server's per-source TCP
	// connection cap (an agent holds one signal stream).
	DefaultMaxSessionsPerSource = 64
	DefaultMaxPending           = 1024
	DefaultOpenRate             = 2
	DefaultOpenBurst            = 64
	DefaultMaxSources           = 65536
)

// Config configures a Server. Limits left zero get the defaults above; a
// negative value turns a limit off where noted.
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
	// Authorize, if set, is asked after a peer has proved possession of its
	// key whether that key may hold a session (for example: is it a peer
	// registered with management). Refused keys get PermissionDenied. It
	// must be fast and safe for concurrent use. Nil admits every key.
	Authorize func(keys.Public) bool

	// QueueSize and QueueBytes bound the envelopes queued to one session
	// (defaults 1024 and 4 MiB); one sender may fill at most a quarter of
	// either. An envelope that does not fit is answered to its sender with
	// RATE_LIMITED; the recipient is not disconnected.
	QueueSize  int
	QueueBytes int
	// MaxBody is the largest accepted envelope body in bytes. Default 64
	// KiB; lowered to fit MaxFrame.
	MaxBody int
	// MaxBatch is the most envelopes the server writes in one frame and
	// accepts in one client frame. Default 256.
	MaxBatch int
	// MaxFrame bounds the bytes of one frame the server sends. Default 1
	// MiB, a quarter of gRPC's default 4 MiB receive limit of clients.
	MaxFrame int
	// Rate and Burst limit the envelopes one session may send per second
	// (token bucket); ByteRate and ByteBurst limit their body bytes.
	// Excess envelopes are answered with RATE_LIMITED, so one peer cannot
	// flood another. Defaults 2000/s with burst 4000, and 1 MiB/s with
	// burst 4 MiB; Rate < 0 and ByteRate < 0 disable them.
	Rate      float64
	Burst     int
	ByteRate  float64
	ByteBurst int

	// MaxSessions caps registered peers (default 10000, < 0 no cap);
	// MaxSessionsPerSource caps the streams (registering or registered) from
	// one IP address (default 64, < 0 no cap); MaxPending caps streams
	// still registering (default 1024, < 0 no cap). Streams over a cap end
	// with ResourceExhausted.
	MaxSessions          int
	MaxSessionsPerSource int
	MaxPending           int
	// OpenRate and OpenBurst limit how fast one IP address may open
	// streams (token bucket, default 2/s with burst 64; OpenRate < 0
	// disables). A stream over the limit ends with ResourceExhausted
	// carrying a RetryInfo hint. MaxSources bounds the addresses tracked
	// (default 65536).
	OpenRate   float64
	OpenBurst  int
	MaxSources int
	// Now is the clock of the open-rate limiter (tests); nil is time.Now.
	Now func() time.Time
	// Cluster, if set, records where peers are registered and forwards
	// envelopes for peers not registered here to their instance
	// (cluster.go); a miss is still answered with NOT_CONNECTED.
	Cluster Cluster
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.RegisterTimeout <= 0 {
		c.RegisterTimeout = DefaultRegisterTimeout
	}
	for _, p := range []struct {
		v *int
		d int
	}{
		{&c.QueueSize, DefaultQueueSize}, {&c.QueueBytes, DefaultQueueBytes}, {&c.MaxBody, DefaultMaxBody},
		{&c.MaxBatch, DefaultMaxBatch}, {&c.MaxFrame, DefaultMaxFrame},
	} {
		if *p.v <= 0 {
			*p.v = p.d
		}
	}
	// One envelope of the largest body must fit a frame.
	c.MaxFrame = max(c.MaxFrame, 1024)
	c.MaxBody = min(c.MaxBody, c.MaxFrame-frameOverhead-2*keys.Len-itemOverhead)
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Burst <= 0 {
		c.Burst = max(2*int(c.Rate), c.MaxBatch)
	}
	if c.ByteRate == 0 {
		c.ByteRate = DefaultByteRate
	}
	def(&c.ByteBurst, DefaultByteBurst)
	c.ByteBurst = max(c.ByteBurst, c.MaxBody)
	def(&c.MaxSessions, DefaultMaxSessions)
	def(&c.MaxSessionsPerSource, DefaultMaxSessionsPerSource)
	def(&c.MaxPending, DefaultMaxPending)
	if c.OpenRate == 0 {
		c.OpenRate = DefaultOpenRate
	}
	if c.OpenBurst <= 0 {
		c.OpenBurst = DefaultOpenBurst
	}
	if c.MaxSources <= 0 {
		c.MaxSources = DefaultMaxSources
	}
}

// Stats is a snapshot of server counters.
type Stats struct {
	Connected     int    // registered sessions now
	Routed        uint64 // envelopes queued to a recipient
	Undeliverable uint64 // envelopes answered with NOT_CONNECTED
	Rejected      uint64 // envelopes answered with BAD_REQUEST / TOO_LARGE
	RateLimited   uint64 // envelopes answered with RATE_LIMITED: sender over its rate
	RecipientBusy uint64 // envelopes answered with RATE_LIMITED: no room in the recipient's queue
	AuthFailures  uint64 // registrations that failed the challenge
	Unauthorized  uint64 // registrations refused by Config.Authorize
	Replaced      uint64 // sessions closed by a newer session of the same key
	Overflows     uint64 // sessions closed because their queue overflowed with their own replies
	DeadStreams   uint64 // sessions closed by the heartbeat timeout
	OpensLimited  uint64 // streams refused by the per-source open rate
	SourceCapped  uint64 // streams refused by MaxSessionsPerSource
	PendingCapped uint64 // streams refused by MaxPending
	SessionCapped uint64 // registrations refused by MaxSessions
	ForwardedOut  uint64 // envelopes delivered through Config.Cluster to another instance
	ForwardedIn   uint64 // envelopes from another instance queued here (Deliver)
}

type counters struct {
	routed, undeliverable, rejected, rateLimited, busy atomic.Uint64
	authFailures, unauthorized, replaced, overflows    atomic.Uint64
	dead, opensLimited, sourceCapped, pendingCapped    atomic.Uint64
	sessionCapped, forwardedOut, forwardedIn           atomic.Uint64
}

// Server is the signal service. Create it with NewServer, expose it with
// Register, and end it with Stop.
type Server struct {
	signalpb.UnimplementedSignalServer

	cfg     Config
	log     *slog.Logger
	pub     keys.Public
	reg     *registry
	ctr     counters
	opens   *ratelimit.Limiter[netip.Addr] // nil: unlimited
	srcs    sources
	pending atomic.Int64
	fenced  atomic.Bool // fence.go
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup // handlers and reader goroutines

	mu      sync.Mutex
	stopped bool
}

// NewServer returns a server; it holds no sockets (see Register).
func NewServer(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{
		cfg:  cfg,
		log:  cfg.Logger.With("component", "signal"),
		pub:  cfg.Key.Public(),
		reg:  newRegistry(),
		srcs: sources{n: make(map[netip.Addr]int)},
		stop: make(chan struct{}),
	}
	if cfg.OpenRate > 0 {
		s.opens = ratelimit.New[netip.Addr](cfg.OpenRate, cfg.OpenBurst, cfg.MaxSources)
		if cfg.Now != nil {
			s.opens.WithClock(cfg.Now)
		}
	}
	return s
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
		RecipientBusy: s.ctr.busy.Load(),
		AuthFailures:  s.ctr.authFailures.Load(),
		Unauthorized:  s.ctr.unauthorized.Load(),
		Replaced:      s.ctr.replaced.Load(),
		Overflows:     s.ctr.overflows.Load(),
		DeadStreams:   s.ctr.dead.Load(),
		OpensLimited:  s.ctr.opensLimited.Load(),
		SourceCapped:  s.ctr.sourceCapped.Load(),
		PendingCapped: s.ctr.pendingCapped.Load(),
		SessionCapped: s.ctr.sessionCapped.Load(),
		ForwardedOut:  s.ctr.forwardedOut.Load(),
		ForwardedIn:   s.ctr.forwardedIn.Load(),
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
// stopping reports whether Stop was called.
func (s *Server) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

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
	if s.fenced.Load() {
		return errFenced
	}
	src := sourceOf(stream.Context())
	registered, err := s.admit(src)
	if err != nil {
		return err
	}
	defer s.leave(src)
	defer registered()
	if !s.enter() { // for the reader goroutine
		return errStopping
	}
	sess := newSession(s.cfg.QueueSize, s.cfg.QueueBytes)
	if s.cfg.Rate > 0 {
		sess.limit = rate.NewLimiter(rate.Limit(s.cfg.Rate), s.cfg.Burst)
	}
	if s.cfg.ByteRate > 0 {
		sess.byteLimit = rate.NewLimiter(rate.Limit(s.cfg.ByteRate), s.cfg.ByteBurst)
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
	registered()

	if old, ok := s.reg.put(sess, s.cfg.MaxSessions); !ok {
		s.ctr.sessionCapped.Add(1)
		return status.Error(codes.ResourceExhausted, "too many signal sessions")
	} else if old != nil {
		s.ctr.replaced.Add(1)
		old.kill(status.Error(codes.Aborted, "replaced by a newer session of the same key"))
	}
	defer s.reg.remove(sess)
	if s.fenced.Load() { // fenced before or while registering
		return errFenced
	}
	if c := s.cfg.Cluster; c != nil {
		reg := c.Opened(sess.key)
		defer func() {
			// A stopping server skips the per-session removal: the
			// cluster removes all of this instance's presence at once
			// (SignalInstanceGone), and a DELETE per session would hold
			// the stop for as many round trips.
			if !s.stopping() {
				c.Closed(sess.key, reg)
			}
		}()
	}
	log := s.log.With("peer", sess.key.Short())
	log.Debug("peer registered")

	err = s.supervise(stream, sess, readerDone)
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
