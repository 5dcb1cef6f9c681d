// Package client is the agent side of the Petrel relay: it keeps one home
// connection to the relay pool (reconnecting with jittered backoff) and
// opens foreign connections on demand to the instances other peers are
// homed on, closing them after ForeignIdleTimeout without traffic.
//
// Who may import it: the agent (client/peer, client/wg's Bind), tests and
// benches.
//
// Threading: all methods are safe for concurrent use. Send copies the packet
// into a pooled buffer; when the connection is idle it writes it at once from
// the caller's goroutine (one socket write, like a UDP send), otherwise it
// queues it for the connection's write goroutine (a full queue returns
// ErrQueueFull and drops the packet, as a congested link would). A write
// that took over a millisecond switches the connection to queue-only for a
// while, so a stalled relay cannot hold the caller. The receiver, the state hook
// and the unreachable hook are called from the connections' read and
// lifecycle goroutines; they must return quickly and must not call Stop. The
// packet handed to the receiver is valid only during the call.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"petrel/internal/backoff"
	"petrel/internal/keys"
	"petrel/relay/frame"
	"petrel/relay/internal/cork"
)

// Errors returned by Send and Start.
var (
	ErrNotConnected = errors.New("relay not connected")
	ErrQueueFull    = errors.New("relay send queue full")
	ErrTooLarge     = errors.New("packet too large for relay")
	ErrStopped      = errors.New("relay client stopped")
	ErrAuthRefused  = errors.New("relay refused authentication")
	ErrNoToken      = errors.New("no relay token")
)

// corkSlot is the context key under which conn.dial receives the wrapped
// connection the transport dialed.
type corkSlot struct{}

// DialFunc dials a TCP connection; addr is host:port.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Config configures a Client. Zero durations take the documented defaults.
type Config struct {
	// URLs are the advertised relay pool roots or instance URLs (rel:// or
	// rels://), tried in order for the home connection.
	URLs []string
	// Key is this peer's WireGuard public key, which the token is bound to.
	Key keys.Public
	// Token returns the current relay token; it is asked before every
	// authentication (management re-issues tokens before they expire).
	Token func() string
	// Dial dials the TCP connection (e.g. a marked-socket dialer); default
	// net.Dialer.
	Dial DialFunc
	// TLSConfig is used for rels:// URLs; default system roots.
	TLSConfig *tls.Config
	Logger    *slog.Logger

	ForeignIdleTimeout time.Duration // default 60 s
	// ReconnectSpread bounds the random delay before reconnecting after the
	// home connection dropped, so a fleet does not reconnect in one burst
	// when a relay restarts; default 8 s.
	ReconnectSpread time.Duration
	PingInterval    time.Duration // keepalive; default 25 s
	DialTimeout     time.Duration // dial + auth; default 10 s
	SendQueue       int           // frames queued per connection; default 1024
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		c.Dial = d.DialContext
	}
	if c.ForeignIdleTimeout <= 0 {
		c.ForeignIdleTimeout = 60 * time.Second
	}
	if c.ReconnectSpread <= 0 {
		c.ReconnectSpread = 8 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 1024
	}
}

// Receiver gets relayed packets: src is the sending peer, instanceURL the
// instance the packet arrived through. pkt is valid only during the call.
type Receiver func(src keys.Public, instanceURL string, pkt []byte)

type lifecycle int

const (
	stateNew lifecycle = iota
	stateRunning
	stateStopped
)

// Client is a relay client. Create it with New.
type Client struct {
	cfg  Config
	log  *slog.Logger
	http *http.Client
	pool frame.BufPool

	mu       sync.Mutex
	state    atomic.Int32 // lifecycle
	ctx      context.Context
	cancel   context.CancelFunc
	stopLink func() bool
	wg       sync.WaitGroup

	home atomic.Pointer[conn]
	// lastHome is the instance URL of the latest home connection; it is
	// kept while the home reconnects so that traffic for that instance
	// waits for it instead of opening a second ("foreign") connection to
	// the same instance, which the relay would treat as a replacement.
	lastHome atomic.Pointer[string]
	fmu      sync.Mutex
	foreign  map[string]*foreignEntry

	recv        atomic.Pointer[Receiver]
	onState     atomic.Pointer[func(connected bool, homeURL string)]
	unreachable atomic.Pointer[func(peer keys.Public, instanceURL string)]
}

type foreignEntry struct {
	conn    *conn // nil after a failed dial until retryAt
	retryAt time.Time
	bo      backoff.Backoff
}

// New returns a stopped client; call Start.
func New(cfg Config) *Client {
	cfg.setDefaults()
	tlsConf := cfg.TLSConfig.Clone()
	if tlsConf == nil {
		tlsConf = &tls.Config{}
	}
	tlsConf.NextProtos = []string{"http/1.1"} // WebSocket upgrade needs HTTP/1.1
	dial := cfg.Dial
	tr := &http.Transport{
		// Wrap every connection so bursts (SendBatch, a backed-up queue)
		// go out in one syscall; conn.dial finds its wrapper through the
		// context.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cc := cork.New(nc)
			if slot, ok := ctx.Value(corkSlot{}).(*atomic.Pointer[cork.Conn]); ok {
				slot.Store(cc)
			}
			return cc, nil
		},
		TLSClientConfig:   tlsConf,
		ForceAttemptHTTP2: false,
		DisableKeepAlives: true,
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{
		ctx:     ctx,
		cancel:  cancel,
		cfg:     cfg,
		log:     cfg.Logger.With("component", "relay-client"),
		http:    &http.Client{Transport: tr},
		foreign: make(map[string]*foreignEntry),
	}
}

// SetReceiver installs the packet receiver (nil drops packets).
func (c *Client) SetReceiver(r Receiver) { c.recv.Store(&r) }

// OnStateChange installs a hook called when the home connection comes up
// (connected=true, with the instance URL) or goes down.
func (c *Client) OnStateChange(f func(connected bool, homeURL string)) { c.onState.Store(&f) }

// OnUnreachable installs a hook called when an instance reports that a
// destination peer is not connected to it (rate limited by the relay).
func (c *Client) OnUnreachable(f func(peer keys.Public, instanceURL string)) {
	c.unreachable.Store(&f)
}

// Start connects home in the background and returns at once.
func (c *Client) Start(ctx context.Context) error {
	if len(c.cfg.URLs) == 0 {
		return errors.New("start relay client: no relay URLs")
	}
	for _, u := range c.cfg.URLs {
		if _, err := wsURL(u); err != nil {
			return fmt.Errorf("start relay client: %w", err)
		}
	}
	if c.cfg.Token == nil {
		return fmt.Errorf("start relay client: %w", ErrNoToken)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if lifecycle(c.state.Load()) != stateNew {
		return errors.New("start relay client: already started")
	}
	c.state.Store(int32(stateRunning))
	c.stopLink = context.AfterFunc(ctx, c.cancel)
	c.wg.Add(1)
	go c.homeLoop()
	return nil
}

// Stop closes all connections and waits for the client's goroutines. It is
// idempotent and final.
func (c *Client) Stop() {
	c.mu.Lock()
	c.cancel()
	if c.stopLink != nil {
		c.stopLink()
	}
	c.state.Store(int32(stateStopped))
	c.mu.Unlock()
	if h := c.home.Load(); h != nil {
		h.close()
	}
	c.fmu.Lock()
	for _, e := range c.foreign {
		if e.conn != nil {
			e.conn.close()
		}
	}
	c.fmu.Unlock()
	c.wg.Wait()
	c.http.CloseIdleConnections()
}

// HomeURL returns the home instance URL from auth-ok, or "" while not
// connected.
func (c *Client) HomeURL() string {
	if h := c.home.Load(); h != nil {
		return h.instance
	}
	return ""
}

// Connected reports whether the home connection is up.
func (c *Client) Connected() bool { return c.home.Load() != nil }

// Send relays pkt to dst. instanceURL "" or equal to the home instance uses
// the home connection; any other URL uses (and if needed opens, with the
// same token) a foreign connection to that instance; packets sent while it
// is being opened are queued. Send does not block on a congested relay.
func (c *Client) Send(dst keys.Public, instanceURL string, pkt []byte) error {
	if len(pkt) > frame.MaxPacket {
		return ErrTooLarge
	}
	cn, err := c.route(instanceURL)
	if err != nil {
		return err
	}
	buf := c.pool.Get(frame.TransportLen + len(pkt))
	*buf = frame.AppendTransport(*buf, dst, pkt)
	return cn.send(buf)
}

// SendBatch relays several packets to dst like Send, coalescing them into as
// few socket writes as possible (WireGuard hands its Bind batches). It
// returns the first error; packets that did not fit the queue are dropped.
func (c *Client) SendBatch(dst keys.Public, instanceURL string, pkts [][]byte) error {
	for _, p := range pkts {
		if len(p) > frame.MaxPacket {
			return ErrTooLarge
		}
	}
	cn, err := c.route(instanceURL)
	if err != nil {
		return err
	}
	return cn.sendBatch(dst, pkts)
}

func (c *Client) route(instanceURL string) (*conn, error) {
	h := c.home.Load()
	if instanceURL == "" || (h != nil && instanceURL == h.instance) {
		if h == nil {
			return nil, ErrNotConnected
		}
		return h, nil
	}
	if h == nil {
		if last := c.lastHome.Load(); last != nil && *last == instanceURL {
			return nil, ErrNotConnected // home is reconnecting to that instance
		}
	}
	cn, err := c.foreignConn(instanceURL)
	if err != nil {
		return nil, err
	}
	cn.touch()
	return cn, nil
}

// homeLoop keeps the home connection up until Stop.
func (c *Client) homeLoop() {
	defer c.wg.Done()
	bo := backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
	for {
		cn, err := c.dialHome()
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			d := bo.Next()
			c.log.Info("relay home connect failed", "err", err, "retry_in", d.Round(time.Millisecond))
			if !c.sleep(d) {
				return
			}
			continue
		}
		bo.Reset()
		c.home.Store(cn)
		inst := cn.instance
		c.lastHome.Store(&inst)
		c.log.Info("relay home connected", "instance", cn.instance)
		c.notifyState(true, cn.instance)
		cn.run()
		c.home.Store(nil)
		c.notifyState(false, "")
		if c.ctx.Err() != nil {
			return
		}
		// Spread reconnects: after a relay restart every client of it
		// lands here at the same moment.
		d := backoff.Jitter(c.cfg.ReconnectSpread)
		c.log.Info("relay home connection lost", "reconnect_in", d.Round(time.Millisecond))
		if !c.sleep(d) {
			return
		}
	}
}

func (c *Client) dialHome() (*conn, error) {
	var errs []error
	for _, u := range c.cfg.URLs {
		cn := c.newConn(u, false)
		if err := cn.dial(c.ctx); err != nil {
			errs = append(errs, err)
			if c.ctx.Err() != nil {
				break
			}
			continue
		}
		return cn, nil
	}
	return nil, errors.Join(errs...)
}

// foreignConn returns the connection to instanceURL, starting a dial if
// there is none (and the last failure's backoff has passed).
func (c *Client) foreignConn(instanceURL string) (*conn, error) {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if lifecycle(c.state.Load()) != stateRunning || c.ctx.Err() != nil {
		return nil, ErrStopped
	}
	e := c.foreign[instanceURL]
	if e != nil && e.conn != nil {
		return e.conn, nil
	}
	if e != nil && time.Now().Before(e.retryAt) {
		return nil, ErrNotConnected
	}
	if _, err := wsURL(instanceURL); err != nil {
		return nil, err
	}
	if e == nil {
		e = &foreignEntry{bo: backoff.Backoff{Min: time.Second, Max: 30 * time.Second}}
		c.foreign[instanceURL] = e
	}
	cn := c.newConn(instanceURL, true)
	e.conn = cn
	c.wg.Add(1)
	go c.runForeign(instanceURL, e, cn)
	return cn, nil
}

func (c *Client) runForeign(instanceURL string, e *foreignEntry, cn *conn) {
	defer c.wg.Done()
	if err := cn.dial(c.ctx); err != nil {
		c.fmu.Lock()
		e.conn = nil
		d := e.bo.Next()
		e.retryAt = time.Now().Add(d)
		c.fmu.Unlock()
		cn.drop()
		c.log.Info("relay foreign connect failed", "instance", instanceURL, "err", err, "retry_in", d.Round(time.Millisecond))
		return
	}
	c.log.Debug("relay foreign connected", "instance", cn.instance)
	cn.run()
	c.fmu.Lock()
	if c.foreign[instanceURL] == e && e.conn == cn {
		delete(c.foreign, instanceURL)
	}
	c.fmu.Unlock()
	cn.drop()
}

func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (c *Client) notifyState(up bool, url string) {
	if f := c.onState.Load(); f != nil && *f != nil {
		(*f)(up, url)
	}
}

// wsURL maps rel:// to ws:// and rels:// to wss:// with path /relay.
func wsURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("parse relay url: %w", err)
	}
	switch u.Scheme {
	case "rel":
		u.Scheme = "ws"
	case "rels":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("relay url %q: scheme must be rel or rels", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("relay url %q: missing host", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/relay"
	}
	return u.String(), nil
}
