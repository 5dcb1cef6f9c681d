// Package engine turns the management service's network map into agent
// state: it logs in, keeps the Sync stream, runs the WireGuard device, the
// signal and relay clients and one peer.Conn per remote peer, and answers
// status and ping for the daemon.
//
// Imported by client/daemon. Engine methods are safe for concurrent use.
// Goroutines: the Sync loop (applies maps in serial order), the signal
// client's handler goroutine (dispatches to peer.Conn), the relay client's
// read goroutines (feed the Bind), and the latency and liveness prober
// (probe.go, liveness.go: one loop plus at most probeParallel pings in
// flight), which Stop waits for.
package engine

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"golang.zx2c4.com/wireguard/tun/netstack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"petrel/client/firewall"
	"petrel/client/mgmt"
	"petrel/client/peer"
	"petrel/client/wg"
	"petrel/internal/keys"
	"petrel/internal/tlstrust"
	"petrel/proto/managementpb"
	relayclient "petrel/relay/client"
	signalclient "petrel/signal/client"
)

// Recorder journals host changes before they are made (client/daemon.Journal).
type Recorder interface {
	Record(kind, name string, data map[string]string) error
}

// Config is the engine configuration (validated by the daemon).
type Config struct {
	ManagementURL string
	SetupKey      string // used only when the key is not registered yet
	// IDToken is an OpenID ID token from a user's sign-in (the device
	// flow); it is sent with the first login only (the server accepts each
	// token once) and never stored.
	IDToken  string
	Hostname string
	// OnLoginRetry, if set, is told about each failed attempt to reach
	// management while logging in (attempt counts from 1; why is the
	// error; next the wait before the next attempt) so a waiting user sees
	// progress. It runs on the logging-in goroutine and must not block.
	OnLoginRetry  func(attempt int, why string, next time.Duration)
	Key           keys.Private
	Netstack      bool
	InterfaceName string
	MTU           int
	WGPort        int
	SOCKS5Addr    string
	ICELoopback   bool
	ForceRelay    bool
	Journal       Recorder
	Exit          ExitPrefs     // saved exit-node settings
	StateDir      string        // agent state dir (DNS host backup)
	ResolvConf    string        // default /etc/resolv.conf
	DNSMode       string        // host integration: auto (default), file, resolved, off
	DNSAddr       string        // netstack mode: resolver listen address (default 127.0.0.1:0)
	DNSNoBypass   bool          // debug knob: no bypass resolver for the control-plane cache
	DNSCacheTTL   time.Duration // debug knob: control-plane cache TTL (0 = 5 min)
	NoFirewall    bool          // debug knob: no packet filter (benchmarks: filter on vs off)
	// RootCAs are trusted for https:// management and signal and rels://
	// relays (tls.go); nil = the system roots.
	RootCAs *x509.CertPool
	Logger  *slog.Logger
	// BlockDirect is a test hook: drop direct UDP to/from matching addresses.
	BlockDirect func(netip.AddrPort) bool
}

// mgmtConnectParams bound gRPC's own reconnect backoff for the management
// channel. Its default grows to 120 s: after a management outage of a
// minute the channel stayed in backoff for up to another minute, and every
// Login/Sync retry of the engine (own backoff, max 30 s) failed fast
// meanwhile.
var mgmtConnectParams = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 500 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
	MinConnectTimeout: 10 * time.Second,
}

type lifecycle int32

const (
	stateNew lifecycle = iota
	stateRunning
	stateStopped
)

// Engine is a running agent.
type Engine struct {
	cfg Config
	log *slog.Logger
	pub keys.Public

	state  atomic.Int32
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// probeWG tracks probeLoop and routeLoop; Stop waits for them before
	// closing the device.
	probeWG sync.WaitGroup

	mgmt   *mgmt.Client
	bind   *wg.Bind
	dev    *wg.Device
	mux    *ice.UniversalUDPMuxDefault
	signal *signalclient.Client
	relay  *relayclient.Client
	socks  string
	// mgmtTLS are the management dial's credentials, https:// only (tls.go).
	mgmtTLS *tlstrust.Creds

	mgmtUp     atomic.Bool
	needsLogin atomic.Bool
	// idTokenSent: cfg.IDToken went out with a login that succeeded.
	idTokenSent atomic.Bool
	// hostname overrides cfg.Hostname once SetHostname was called.
	hostname   atomic.Pointer[string]
	relayToken atomic.Pointer[string]

	mu       sync.Mutex
	nm       *managementpb.NetworkMap
	serverCf *managementpb.ServerConfig
	self     *managementpb.PeerConfig
	peers    map[keys.Public]*remote

	rt  *routing         // routes and exit nodes (routes.go)
	fw  *firewall.Filter // packet filter enforcing the access policy (firewall.go)
	dns dnsState         // resolver and host DNS (dns.go)

	unsup unsupportedState // features this platform lacks (unsupported.go)

	cache cacheState // the on-disk map cache (cache.go)
	// after schedules the handshake timers (kick.go); nil = time.AfterFunc.
	// Tests set a fake clock.
	after    func(time.Duration, func()) timer
	keepPort int // WireGuard port of the previous run (from the cache)

	links linkCounters  // control-plane connections made (metrics.go)
	rep   reportState   // path reports to management (reports.go)
	dq    dnsQueryState // DNS tests management asks for (dnsquery.go)
}

type remote struct {
	info   *managementpb.RemotePeer // guarded by Engine.mu
	conn   *peer.Conn
	live   liveState   // offline verdict (liveness.go)
	cached atomic.Bool // WireGuard was given the endpoint from the map cache

	// devMu serialises this peer's WireGuard configuration (lock order:
	// devMu, then Engine.mu). configured: the device has the peer (created
	// with its first endpoint, or at once on the answering side: peers.go);
	// removed: it left the map.
	devMu       sync.Mutex
	configured  bool
	hold        bool // answering side: paths not yet given to WireGuard (peers.go)
	keepaliveOn bool // WireGuard has the persistent keepalive
	removed     bool
	endpoint    string         // WireGuard endpoint last set
	routed      []netip.Prefix // networks routed through this peer now (routes.go)
	kick        timer          // handshake check (kick.go)

	probe probeState // latency probe (probe.go)
}

// New validates cfg; nothing is started.
func New(cfg Config) (*Engine, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Key.IsZero() {
		return nil, errors.New("engine: no private key")
	}
	if cfg.WGPort < 0 || cfg.WGPort > 65535 {
		return nil, fmt.Errorf("engine: WireGuard port %d is not in 0..65535", cfg.WGPort)
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1280
	}
	if cfg.InterfaceName == "" {
		cfg.InterfaceName = wg.DefaultInterfaceName()
	}
	e := &Engine{cfg: cfg, log: cfg.Logger.With("component", "engine"), pub: cfg.Key.Public(),
		peers: map[keys.Public]*remote{}}
	e.initRouting()
	return e, nil
}

// ManagementURL returns the management URL the engine uses.
func (e *Engine) ManagementURL() string { return e.cfg.ManagementURL }

// HasRelay reports whether management advertised a relay.
func (e *Engine) HasRelay() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.serverCf != nil && e.serverCf.Relay != nil && len(e.serverCf.Relay.Urls) > 0
}

// grpcTarget turns http(s)://host[:port] into host:port and a TLS flag.
func grpcTarget(raw string) (string, bool, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("parse URL %q: %w", raw, err)
	}
	tls := u.Scheme == "https"
	if u.Scheme != "http" && !tls {
		return "", false, fmt.Errorf("URL %q: scheme must be http or https", raw)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if tls {
			port = "443"
		}
	}
	if u.Hostname() == "" {
		return "", false, fmt.Errorf("URL %q has no host", raw)
	}
	return net.JoinHostPort(u.Hostname(), port), tls, nil
}

// Start logs in (blocking, bounded by ctx), creates the device and starts
// the background loops. On error everything started is torn down.
func (e *Engine) Start(ctx context.Context) (err error) {
	if !e.state.CompareAndSwap(int32(stateNew), int32(stateRunning)) {
		return errors.New("engine already started")
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()
	e.mgmt, err = e.dialManagement(ctx)
	if err != nil {
		return fmt.Errorf("connect to management: %w", err)
	}
	cached := e.loadCache()
	if cached != nil && e.cfg.WGPort == 0 {
		e.keepPort = cached.WGPort
	}
	resp, err := e.loginOrCache(ctx, cached)
	if errors.Is(err, ErrLoginRefused) {
		e.dropCache()
	}
	if err != nil {
		return err
	}
	if !e.cfg.NoFirewall {
		e.fw = firewall.New(e.cfg.Logger) // denies everything until the first map's rules
	}
	if err := e.setupDevice(resp.GetPeerConfig()); err != nil {
		return err
	}
	if self, err := netip.ParsePrefix(resp.GetPeerConfig().GetAddress()); err == nil {
		e.startDNS(self)
	}
	e.startCacheWriter()
	e.applyServerConfig(resp.GetServerConfig())
	e.replan() // a saved kill switch holds before the first map
	if e.cache.fromCache.Load() {
		e.useCachedMap(cached)
	}
	e.probeWG.Add(3)
	go e.probeLoop()
	go e.routeLoop()
	go e.reportLoop()
	e.wg.Add(1)
	go e.syncLoop()
	return nil
}

// Stop tears everything down. Idempotent.
func (e *Engine) Stop() {
	prev := lifecycle(e.state.Swap(int32(stateStopped)))
	if prev == stateStopped {
		return
	}
	if e.cancel != nil {
		e.cancel()
	}
	e.probeWG.Wait() // probe and route loops: their pings end with ctx; none may outlive the device
	e.dq.stop()      // DNS tests: they use the resolver and the device
	e.stopCache()
	e.mu.Lock()
	peers := e.peers
	e.peers = map[keys.Public]*remote{}
	e.mu.Unlock()
	for _, r := range peers {
		r.conn.Close()
		r.devMu.Lock()
		r.removed = true
		if r.kick != nil {
			r.kick.Stop()
		}
		r.devMu.Unlock()
	}
	e.stopDNS()
	if e.rt.mgr != nil {
		e.rt.mu.Lock() // no Apply in flight
		if err := e.rt.mgr.Close(); err != nil {
			e.log.Warn("remove routes", "err", err)
		}
		e.rt.mu.Unlock()
	}
	if e.signal != nil {
		e.signal.Stop()
	}
	if e.relay != nil {
		e.relay.Stop()
	}
	if e.mux != nil {
		_ = e.mux.Close()
	}
	if e.dev != nil {
		_ = e.dev.Close()
	}
	if e.mgmt != nil {
		_ = e.mgmt.Close()
	}
	e.wg.Wait()
	if e.fw != nil {
		e.fw.Close()
	}
}

func (e *Engine) running() bool { return lifecycle(e.state.Load()) == stateRunning }

// Netstack returns the userspace network stack (netstack mode only; nil
// otherwise), for programs and tests that dial into the overlay.
func (e *Engine) Netstack() *netstack.Net {
	if e.dev == nil {
		return nil
	}
	return e.dev.Netstack()
}

// SetBlockDirect is a test hook: drop direct UDP to/from matching addresses
// (nil unblocks).
func (e *Engine) SetBlockDirect(fn func(netip.AddrPort) bool) {
	if e.bind != nil {
		e.bind.SetBlockUDP(fn)
	}
}

// LocalPort is the shared WireGuard/ICE UDP port.
func (e *Engine) LocalPort() int {
	if e.bind == nil || e.bind.LocalAddr() == nil {
		return 0
	}
	return e.bind.LocalAddr().Port
}

// PublicKey is this agent's WireGuard public key.
func (e *Engine) PublicKey() keys.Public { return e.pub }

// Hostname is the name the engine logs in with (cfg.Hostname until
// SetHostname changes it).
func (e *Engine) Hostname() string {
	if h := e.hostname.Load(); h != nil {
		return *h
	}
	return e.cfg.Hostname
}

// SetHostname changes the name later logins and Sync requests carry
// (`petrel set --hostname`), so a reconnect does not send the old one.
func (e *Engine) SetHostname(h string) { e.hostname.Store(&h) }

// NeedsLogin reports that management refused this peer (deleted by an
// admin): the agent stopped syncing and needs a setup key again.
func (e *Engine) NeedsLogin() bool { return e.needsLogin.Load() }
