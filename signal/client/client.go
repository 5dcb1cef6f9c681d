// Package client is the agent side of the Petrel signal protocol: it keeps
// one registered stream to the signal server (reconnecting with jittered
// backoff), seals PeerMessages end to end to their recipients and opens
// the ones it receives.
//
// Imported by the agent (client/engine, client/peer) and tests.
//
// Threading: all methods are safe for concurrent use. The message handler
// (SetHandler) and the delivery-error handler (OnError) run on the stream's
// receive goroutine, one call at a time in arrival order; they must return
// quickly (hand work off): while they block, messages to this agent are
// refused to their senders, and after three heartbeat intervals the server
// closes the stream.
// They may call Send but not Stop (Stop waits for that goroutine).
// OnStateChange callbacks run on the connection goroutine, in order, with
// the same restriction.
//
// Undeliverable messages: Send returns once the message is queued on a
// live stream. If the server cannot deliver it (recipient unknown, offline
// or busy, or this client over its rate) it answers with an Error that
// reaches the OnError handler as a *DeliveryError naming the recipient;
// errors.Is(err, ErrRecipientNotConnected) holds when the recipient is
// unknown or offline (code NOT_CONNECTED; a busy recipient is RATE_LIMITED).
//
// A server that limits session opens answers ResourceExhausted with a
// RetryInfo detail; the client then waits that long before reconnecting.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/proto/signalpb"
)

// MaxBatch is the most envelopes the client packs into one frame; the
// server's MaxBatch must not be below it.
const MaxBatch = 64

// MaxFrame bounds the bytes of the envelopes the client packs into one
// frame (a single larger envelope still goes alone), well below gRPC's
// default 4 MiB receive limit of the server.
const MaxFrame = 1 << 20

// windowSize is the fixed HTTP/2 receive window of client-dialed connections.
const windowSize = 1 << 20

// Errors returned by Send and Start.
var (
	ErrNotConnected          = errors.New("signal: not connected")
	ErrRecipientNotConnected = errors.New("signal: recipient not connected")
	ErrStopped               = errors.New("signal: client stopped")
	ErrStarted               = errors.New("signal: client already started")
)

// Config configures a Client.
type Config struct {
	// Target is host:port of the server's gRPC listener. Ignored if Conn is set.
	Target string
	// Conn is an optional ready connection (Target, Dialer, TLS and
	// DialOptions are then unused and Stop does not close it).
	Conn grpc.ClientConnInterface
	// Dialer, if set, creates the TCP connection (the agent passes one that
	// marks control-plane sockets). It receives Target unresolved.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// TLS enables transport security; TLSConfig overrides the default
	// (system roots, server name from Target).
	TLS       bool
	TLSConfig *tls.Config
	// DialOptions are appended to the client's own.
	DialOptions []grpc.DialOption
	// Key is the agent's WireGuard private key. Required.
	Key keys.Private
	// ServerKey, if non-zero, pins the server key: a challenge from any
	// other key is refused.
	ServerKey keys.Public
	Logger    *slog.Logger
	// RegisterTimeout bounds the registration handshake. Default 10 s.
	RegisterTimeout time.Duration
	// BackoffMin and BackoffMax bound the reconnect delay. Defaults 500 ms, 10 s.
	BackoffMin, BackoffMax time.Duration
	// ReplacedDelay is the wait before reconnecting after the server closed
	// the stream because another session registered the same key (two
	// processes sharing a key must not evict each other in a tight loop).
	// Default 30 s.
	ReplacedDelay time.Duration
	// QueueSize bounds the outbound queue. Default 1024.
	QueueSize int
	// PeerCacheSize bounds the precomputed per-peer key cache. Default 4096.
	PeerCacheSize int
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RegisterTimeout <= 0 {
		c.RegisterTimeout = 10 * time.Second
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 500 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 10 * time.Second
	}
	if c.ReplacedDelay <= 0 {
		c.ReplacedDelay = 30 * time.Second
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 1024
	}
	if c.PeerCacheSize <= 0 {
		c.PeerCacheSize = 4096
	}
}

// DeliveryError reports a message the server could not deliver.
type DeliveryError struct {
	To      keys.Public
	ID      uint64 // the envelope id Send assigned
	Code    signalpb.ErrorCode
	Message string
}

func (e *DeliveryError) Error() string {
	return fmt.Sprintf("signal: message %d to %s not delivered: %s (%s)", e.ID, e.To.Short(), e.Message, e.Code)
}

// Is makes errors.Is(err, ErrRecipientNotConnected) true for NOT_CONNECTED.
func (e *DeliveryError) Is(target error) bool {
	return target == ErrRecipientNotConnected && e.Code == signalpb.ErrorCode_NOT_CONNECTED
}

type lifecycle int32

const (
	stateNew lifecycle = iota
	stateRunning
	stateStopped
)

// Client is one agent's signal connection. Create with New, then Start.
type Client struct {
	cfg   Config
	log   *slog.Logger
	pub   keys.Public
	cache *keyCache
	ids   atomic.Uint64

	handler atomic.Pointer[func(keys.Public, *signalpb.PeerMessage)]
	onErr   atomic.Pointer[func(*DeliveryError)]
	onState atomic.Pointer[func(bool)]

	cur atomic.Pointer[link] // the live registered stream, nil if none

	mu     sync.Mutex
	state  lifecycle
	cancel context.CancelFunc
	done   chan struct{}
	owned  *grpc.ClientConn
}

// link is one registered stream's outbound side.
type link struct {
	out  chan *signalpb.Envelope
	done chan struct{}
}

// New returns a client; nothing happens until Start.
func New(cfg Config) *Client {
	cfg.setDefaults()
	c := &Client{
		cfg:   cfg,
		pub:   cfg.Key.Public(),
		cache: newKeyCache(cfg.Key, cfg.PeerCacheSize),
	}
	c.log = cfg.Logger.With("component", "signal-client")
	return c
}

// PublicKey returns the client's public key.
func (c *Client) PublicKey() keys.Public { return c.pub }

// SetHandler sets the function called for every received message.
// Messages that do not open or parse are dropped (and logged at debug).
func (c *Client) SetHandler(h func(from keys.Public, msg *signalpb.PeerMessage)) {
	c.handler.Store(&h)
}

// OnError sets the function called when the server reports that a sent
// message was not delivered.
func (c *Client) OnError(h func(err *DeliveryError)) { c.onErr.Store(&h) }

// OnStateChange sets the function called when the client becomes connected
// (registered) or disconnected.
func (c *Client) OnStateChange(h func(connected bool)) { c.onState.Store(&h) }

// Connected reports whether a registered stream is up.
func (c *Client) Connected() bool { return c.cur.Load() != nil }

// Start validates the config and starts the connect loop in the background.
// It does not wait for the connection; ctx bounds the client's whole life
// (cancelling it is like Stop without the wait).
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case stateRunning:
		return ErrStarted
	case stateStopped:
		return ErrStopped
	}
	if c.cfg.Key.IsZero() {
		return errors.New("signal: config: Key is required")
	}
	conn := c.cfg.Conn
	if conn == nil {
		if c.cfg.Target == "" {
			return errors.New("signal: config: Target or Conn is required")
		}
		cc, err := c.dial()
		if err != nil {
			return err
		}
		c.owned, conn = cc, cc
	}
	ctx, c.cancel = context.WithCancel(ctx)
	c.done = make(chan struct{})
	c.state = stateRunning
	go c.loop(ctx, signalpb.NewSignalClient(conn))
	return nil
}

func (c *Client) dial() (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if c.cfg.TLS {
		tc := c.cfg.TLSConfig
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		creds = credentials.NewTLS(tc)
	}
	bc := grpcbackoff.DefaultConfig
	bc.BaseDelay, bc.MaxDelay = c.cfg.BackoffMin, c.cfg.BackoffMax
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: c.cfg.RegisterTimeout}),
		// Fixed windows turn off gRPC's BDP probing, which otherwise costs a
		// ping round trip per data frame on a lightly loaded stream.
		grpc.WithInitialWindowSize(windowSize),
		grpc.WithInitialConnWindowSize(windowSize),
	}
	target := c.cfg.Target
	if c.cfg.Dialer != nil {
		opts = append(opts, grpc.WithContextDialer(c.cfg.Dialer))
		target = "passthrough:///" + target
	}
	opts = append(opts, c.cfg.DialOptions...)
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("create grpc client for %s: %w", c.cfg.Target, err)
	}
	return cc, nil
}

// Stop ends the stream and the connect loop and waits for them. Idempotent.
func (c *Client) Stop() {
	c.mu.Lock()
	prev := c.state
	c.state = stateStopped
	c.mu.Unlock()
	if prev != stateRunning {
		return
	}
	c.cancel()
	<-c.done
	if c.owned != nil {
		_ = c.owned.Close()
	}
}

// Send seals msg to the peer `to` and queues it on the live stream. It
// fails with ErrNotConnected when no stream is registered (or the stream
// ends before the message is queued) and with ctx's error if the queue
// stays full until ctx ends. Delivery failures reported by the server
// arrive later through OnError.
func (c *Client) Send(ctx context.Context, to keys.Public, msg *signalpb.PeerMessage) error {
	l := c.cur.Load()
	if l == nil {
		return ErrNotConnected
	}
	bp := marshalBufs.Get().(*[]byte)
	pt, err := proto.MarshalOptions{}.MarshalAppend((*bp)[:0], msg)
	if err != nil {
		marshalBufs.Put(bp)
		return fmt.Errorf("marshal peer message: %w", err)
	}
	body, err := c.cache.get(to).Seal(pt)
	if cap(pt) <= 64<<10 {
		*bp = pt
		marshalBufs.Put(bp)
	}
	if err != nil {
		return fmt.Errorf("seal peer message: %w", err)
	}
	// One allocation for the envelope and its recipient key.
	eb := &envelopeBuf{to: to}
	eb.env.To, eb.env.Id, eb.env.Body = eb.to[:], c.ids.Add(1), body
	env := &eb.env
	select {
	case l.out <- env:
		return nil
	default:
	}
	select {
	case l.out <- env:
		return nil
	case <-l.done:
		return ErrNotConnected
	case <-ctx.Done():
		return ctx.Err()
	}
}

// marshalBufs recycles plaintext buffers (the sealed copy is what is sent).
var marshalBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

type envelopeBuf struct {
	env signalpb.Envelope
	to  keys.Public
}

// Open opens an envelope body sent by `from` to this client and parses
// the PeerMessage inside. Exposed for tests and diagnostics.
func (c *Client) Open(from keys.Public, body []byte) (*signalpb.PeerMessage, error) {
	pt, err := c.cache.get(from).Open(body)
	if err != nil {
		return nil, fmt.Errorf("open envelope: %w", err)
	}
	m := &signalpb.PeerMessage{}
	if err := proto.Unmarshal(pt, m); err != nil {
		return nil, fmt.Errorf("parse peer message: %w", err)
	}
	return m, nil
}

func (c *Client) setState(connected bool) {
	if h := c.onState.Load(); h != nil {
		(*h)(connected)
	}
}
