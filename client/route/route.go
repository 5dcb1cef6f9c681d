package route

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Journal records a host change before it is made (the agent's crash
// journal; client/daemon.Journal satisfies it through an adapter). Record
// must have made the entry durable when it returns: the change follows.
type Journal interface {
	Record(kind, name string, data map[string]string) error
}

// Journal kinds recorded by the Manager; Undoers has one undo per kind.
const (
	// KindRoute is a route in netx.Table. Name: the route as text; data:
	// "table", "dst", "dev" ("" for an unreachable route), "type"
	// ("unicast" or "unreachable").
	KindRoute = "route"
	// KindRule is a policy rule. Name: the rule as text; data: "family"
	// ("4" or "6"), "pref", "table", "fwmark" (hex, "" = none), "invert"
	// ("1" = "not"), "suppress" (suppress_prefixlength, "" = none), "dst"
	// ("" = all).
	KindRule = "rule"
	// KindSysctl is a sysctl the Manager changed. Name: the key
	// ("net.ipv4.ip_forward"); data: "prev", the value before the change.
	KindSysctl = "sysctl"
	// KindNftTable is an nftables table the Manager owns. Name: "inet NAME";
	// data: "family" ("inet"), "table" (NAME). Undo deletes the whole table.
	KindNftTable = "nft-table"
)

// Config is the whole desired host state for routes and exit nodes.
type Config struct {
	Interface string         // overlay TUN name; "" = netstack mode: Apply changes nothing on the host
	Overlay   netip.Prefix   // the overlay range (e.g. 100.64.0.0/16); already reachable through the interface's connected route
	Routes    []netip.Prefix // prefixes to send into the overlay: each a route "dev Interface table netx.Table"; an exit node adds 0.0.0.0/0 (and ::/0 if ever given)
	Exit      Exit
	Serve     []Serve // networks this agent serves as a routing peer (may be 0.0.0.0/0 for an exit node)
}

// Exit is the exit-node part of Config. Every field but Active only has an
// effect while Active is set.
type Exit struct {
	Active     bool // an exit node is selected
	AllowLAN   bool // local subnets stay reachable on the underlay (default true in the CLI)
	KillSwitch bool // drop unmarked traffic that would leave on any interface other than Interface and lo (LAN excepted when AllowLAN)
	BlockIPv6  bool // the overlay has no IPv6: unmarked IPv6 to anything but link-local (and LAN when AllowLAN) is refused, no silent bypass
}

// Serve is a network this agent forwards to as a routing peer.
type Serve struct {
	Network    netip.Prefix
	Masquerade bool
	Sources    []netip.Prefix // overlay addresses (/32) allowed to use this route; traffic from others is not forwarded
}

// Result reports the parts of an Apply the kernel refused.
type Result struct {
	Failed map[netip.Prefix]error // routes of Config.Routes the kernel refused; the rest are installed
}

// Host is what the planner needs to know of the host's own networking.
type Host struct {
	Addrs  []netip.Addr
	Routes []netip.Prefix // main-table non-default destinations
}

// lifecycle is the Manager's state; one enum, not a scatter of bools.
type lifecycle int

const (
	lcIdle    lifecycle = iota // nothing installed, no goroutine
	lcRunning                  // drift goroutine running (something was installed at least once)
	lcClosed                   // Close was called; final
)

// defaultDriftInterval is how often the drift goroutine checks our rules,
// routes and nftables tables.
const defaultDriftInterval = 2 * time.Second

// Manager converges the host's routes, rules, sysctls and nftables tables to
// a Config. All methods are safe for concurrent use; Apply, Close and the
// drift check serialise on mu.
type Manager struct {
	log     *slog.Logger
	j       Journal
	opts    options
	repairs atomic.Int64

	mu    sync.Mutex
	state lifecycle
	plat  *platform // platform state (handles and what is installed); nil until needed
	stop  chan struct{}
	done  chan struct{}
}

// options are unexported knobs for tests.
type options struct {
	nsPath        string        // network namespace to work in ("" = the process's)
	driftInterval time.Duration // 0 = defaultDriftInterval
}

type option func(*options)

// New returns a Manager; nothing is touched on the host until Apply.
func New(log *slog.Logger, j Journal) *Manager {
	return newManager(log, j)
}

func newManager(log *slog.Logger, j Journal, opt ...option) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{log: log.With("component", "route"), j: j}
	for _, o := range opt {
		o(&m.opts)
	}
	if m.opts.driftInterval <= 0 {
		m.opts.driftInterval = defaultDriftInterval
	}
	return m
}

// Repairs returns how many drift repairs were made (for status).
func (m *Manager) Repairs() int { return int(m.repairs.Load()) }

// record journals one change; a nil Journal records nothing.
func (m *Manager) record(kind, name string, data map[string]string) error {
	if m.j == nil {
		return nil
	}
	return m.j.Record(kind, name, data)
}

// startDrift starts the drift goroutine; called with mu held.
func (m *Manager) startDrift(check func()) {
	if m.state != lcIdle {
		return
	}
	m.state = lcRunning
	m.stop = make(chan struct{})
	m.done = make(chan struct{})
	go func(stop <-chan struct{}, done chan<- struct{}, every time.Duration) {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				check()
			}
		}
	}(m.stop, m.done, m.opts.driftInterval)
}

// stopDrift stops the drift goroutine and waits for it. It must be called
// without mu held (the goroutine takes mu).
func (m *Manager) stopDrift() {
	m.mu.Lock()
	stop, done := m.stop, m.done
	m.stop, m.done = nil, nil
	m.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}
