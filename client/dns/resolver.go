package dns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// Sentinel errors.
var (
	// ErrClosed is returned by Start after Close.
	ErrClosed = errors.New("dns: resolver closed")
	// ErrStarted is returned by a second Start.
	ErrStarted = errors.New("dns: resolver already started")
	// ErrNotFound is returned by LookupHost when the name does not exist or
	// has no address.
	ErrNotFound = errors.New("dns: name not found")
	// ErrNoAnswer is returned by LookupHost when no handler could answer
	// (SERVFAIL).
	ErrNoAnswer = errors.New("dns: no answer")
)

const defaultQueryTimeout = 5 * time.Second

type lifecycle int

const (
	stateNew lifecycle = iota
	stateStarted
	stateClosed
)

func (l lifecycle) String() string {
	return [...]string{"new", "started", "closed"}[l]
}

// state is everything Apply swaps at once. Immutable after compile; queries
// load it once and finish on it even if Apply swaps in a newer one.
type state struct {
	settings Settings
	chain    *chain
	zone     *localZone
	groups   []*groupHandler
	original *groupHandler
}

// Resolver is the agent's DNS resolver. See the package documentation for
// its goroutines and threading contract.
type Resolver struct {
	cfg          Config
	log          *slog.Logger
	clock        func() time.Time
	tryTimeout   time.Duration
	queryTimeout time.Duration
	udpReaders   int // reader goroutines per UDP listen address (tests raise it)
	health       *healthTable
	bypassX      *exchanger // control-plane sockets: the bypass resolver
	originalX    *exchanger // host sockets: the original nameservers
	groupX       *exchanger // nameserver groups
	bypass       *bypass    // nil = none
	cache        *mgmtCache
	state        atomic.Pointer[state]

	ctx    context.Context // cancelled by Close; parent of background work
	cancel context.CancelFunc
	bgMu   sync.Mutex // guards bgOff and wg.Add against Close
	bgOff  bool
	wg     sync.WaitGroup

	mu      sync.Mutex // guards life, servers, udp, addrs
	life    lifecycle
	servers []*mdns.Server // miekg: TCP, and UDP on unspecified addresses
	udp     []*udpServer   // our UDP readers (udp.go)
	slowCounters
	queries queryCounters // metrics.go
	addrs   []netip.AddrPort
	applyMu sync.Mutex // serialises Apply (compile + swap)
	own     atomic.Pointer[[]netip.AddrPort]
}

// New validates cfg and builds a resolver with an empty configuration. It
// opens no socket; Start binds the listeners. Query and LookupHost work
// before Start.
func New(cfg Config) (*Resolver, error) {
	for _, ap := range cfg.Listen {
		if !ap.Addr().IsValid() {
			return nil, fmt.Errorf("dns: invalid listen address %v", ap)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Resolver{
		cfg:          cfg,
		log:          log.With("component", "dns"),
		clock:        cfg.Clock,
		tryTimeout:   defaultTryTimeout,
		queryTimeout: defaultQueryTimeout,
		udpReaders:   udpReadersPerAddr,
	}
	if r.clock == nil {
		r.clock = time.Now
	}
	if cfg.CacheTTL <= 0 {
		r.cfg.CacheTTL = defaultCacheTTL
	}
	dial := cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	groupDial := cfg.GroupDial
	if groupDial == nil {
		groupDial = dial
	}
	r.health = newHealthTable(r.clock)
	r.bypassX = &exchanger{dial: dial, tryTimeout: r.tryTimeout, health: r.health, log: r.log}
	r.groupX = &exchanger{dial: groupDial, tryTimeout: r.tryTimeout, health: r.health, log: r.log}
	origDial := cfg.OriginalDial
	if origDial == nil {
		origDial = (&net.Dialer{}).DialContext
	}
	r.originalX = &exchanger{dial: origDial, tryTimeout: r.tryTimeout, health: r.health, log: r.log}
	own := listenOwn(cfg.Listen)
	r.own.Store(&own)
	if !cfg.NoBypass {
		r.bypass = newBypass(cfg.Original, cfg.Listen, r.bypassX)
	}
	if r.bypass == nil {
		r.log.Warn("no bypass resolver: management-domain lookups use the chain's upstreams", "original", cfg.Original, "disabled", cfg.NoBypass)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.cache = newMgmtCache(r.clock, r.cfg.CacheTTL, r.log, r.cacheLookup, r.spawn)
	r.state.Store(r.compile(Settings{}))
	return r, nil
}

// setTryTimeout changes the per-try upstream timeout (tests).
func (r *Resolver) setTryTimeout(d time.Duration) {
	r.tryTimeout = d
	r.bypassX.tryTimeout = d
	r.groupX.tryTimeout = d
	r.originalX.tryTimeout = d
}

func listenOwn(listen []netip.AddrPort) []netip.AddrPort {
	var own []netip.AddrPort
	for _, ap := range listen {
		if ap.Port() != 0 {
			own = append(own, normAddrPort(ap))
		}
	}
	return own
}

// spawn runs f on a goroutine tracked by Close. It returns false once the
// resolver is closing.
func (r *Resolver) spawn(f func(ctx context.Context)) bool {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if r.bgOff {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f(r.ctx)
	}()
	return true
}

// cacheLookup resolves for the management-domain cache: through the bypass
// when there is one, else through the chain's upstream handlers.
func (r *Resolver) cacheLookup(ctx context.Context, q *mdns.Msg) (*mdns.Msg, string, error) {
	if r.bypass != nil {
		resp, s, err := r.bypass.exchange(ctx, q)
		if err != nil {
			return nil, "", fmt.Errorf("bypass: %w", err)
		}
		return resp, "bypass " + s.String(), nil
	}
	resp, info := r.state.Load().chain.resolve(ctx, q, PrioMatchGroup)
	if resp == nil {
		return nil, "", fmt.Errorf("chain: %w", errAllFailed)
	}
	return resp, "chain " + info.Handler, nil
}

// Start binds UDP and TCP on every Listen address and serves them. It does
// not block. On failure it closes what it opened and returns an error naming
// the address; the resolver can then only be closed.
func (r *Resolver) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.life {
	case stateStarted:
		return ErrStarted
	case stateClosed:
		return ErrClosed
	}
	for _, ap := range r.cfg.Listen {
		if err := r.listen(ap); err != nil {
			r.shutdownServers()
			r.life = stateClosed
			r.stopBackground()
			return err
		}
	}
	r.life = stateStarted
	own := append(listenOwn(r.cfg.Listen), r.addrs...)
	r.own.Store(&own)
	r.applyMu.Lock()
	r.state.Store(r.compile(r.state.Load().settings)) // own addresses are now known
	r.applyMu.Unlock()
	r.log.Info("resolver listening", "addrs", r.addrs, "bypass", r.bypassList())
	return nil
}

// Close stops the listeners and background lookups and waits for every
// goroutine the resolver started. It is idempotent.
func (r *Resolver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.life != stateClosed {
		r.shutdownServers()
		r.life = stateClosed
	}
	r.stopBackground()
	return nil
}

func (r *Resolver) stopBackground() {
	r.bgMu.Lock()
	r.bgOff = true
	r.bgMu.Unlock()
	r.cancel()
	r.wg.Wait()
}

// Addrs returns the bound addresses (one per Listen entry, with the chosen
// port), or nil before Start.
func (r *Resolver) Addrs() []netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]netip.AddrPort(nil), r.addrs...)
}

// Apply converges the resolver to s: it compiles a new chain, local zone
// and groups and swaps them in atomically. Queries in flight finish on the
// previous state; nothing is restarted. Upstream health and the
// management-domain cache survive. Identical Settings are harmless.
func (r *Resolver) Apply(s Settings) {
	r.applyMu.Lock()
	st := r.compile(s)
	r.state.Store(st)
	r.applyMu.Unlock()
	host, setHost := "", s.ManagementHost != ""
	if setHost {
		host = canonHost(s.ManagementHost)
	}
	r.cache.setDomains(s.ServerDomains, host, setHost)
}

// ApplyServerDomains applies a partial server-domain update (docs/dns.md,
// "The control-plane lifeline"); see ServerDomains for which categories an
// update carries.
func (r *Resolver) ApplyServerDomains(d ServerDomains) {
	r.cache.setDomains(d, "", false)
}

// compile builds an immutable state from s.
func (r *Resolver) compile(s Settings) *state {
	own := *r.own.Load()
	st := &state{settings: s}
	lz, errs := compileLocalZone(s)
	for _, err := range errs {
		r.log.Warn("local zone record skipped", "err", err)
	}
	st.zone = lz
	links := []link{{prio: PrioMgmtCache, domain: ".", h: r.cache}}
	zh := &zoneHandler{lz: lz}
	for _, z := range lz.zones {
		links = append(links, link{prio: PrioLocalZone, domain: z.origin, h: zh})
	}
	if lz.revSOA != nil {
		links = append(links, link{prio: PrioLocalZone, domain: lz.revSOA.Hdr.Name, h: zh})
	}
	if lz.search != "" {
		links = append(links, link{prio: PrioLocalZone, domain: ".", h: &searchHandler{lz: lz}})
	}
	for _, g := range s.Groups {
		servers := upstreamServers(g.Servers, own)
		if len(servers) == 0 {
			r.log.Warn("nameserver group has no usable server", "group", g.ID)
			continue
		}
		gh := &groupHandler{name: "group:" + g.ID, servers: servers, x: r.groupX, timeout: r.queryTimeout}
		st.groups = append(st.groups, gh)
		primary := g.Primary || len(g.Domains) == 0
		for _, d := range g.Domains {
			cd, ok := canonName(d)
			if d == "." || d == "" {
				primary = true
				continue
			}
			if !ok {
				r.log.Warn("nameserver group domain skipped", "group", g.ID, "domain", d)
				continue
			}
			links = append(links, link{prio: PrioMatchGroup, domain: cd, h: gh})
		}
		if primary {
			links = append(links, link{prio: PrioPrimary, domain: ".", h: gh})
		}
	}
	if servers := upstreamServers(r.cfg.Original, own); len(servers) > 0 {
		st.original = &groupHandler{name: "original", servers: servers, x: r.originalX, timeout: r.queryTimeout}
		links = append(links, link{prio: PrioOriginal, domain: ".", h: st.original})
	}
	st.chain = newChain(links)
	lz.upstream = func(ctx context.Context, q *mdns.Msg) *mdns.Msg {
		resp, _ := st.chain.resolve(ctx, q, PrioMatchGroup)
		return resp
	}
	return st
}

func (r *Resolver) bypassList() []netip.AddrPort {
	if r.bypass == nil {
		return nil
	}
	return r.bypass.servers
}
