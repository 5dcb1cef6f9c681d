package route

import (
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
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
	// ("net.ipv4.ip_forward"); data: "prev", the value before the change,
	// and "value", the value written (undo restores prev only while the
	// sysctl still holds value; entries without "value" restore prev).
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
	// Degraded lists best-effort parts that could not be installed, each
	// "degraded: ..." (today the petrel-mark table and src_valid_mark,
	// needed only under strict rp_filter); routes and rules are installed
	// regardless, and the next Apply retries.
	Degraded []string
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

	mu       sync.Mutex
	state    lifecycle
	plat     *platform // platform state (handles and what is installed); nil until needed
	stop     chan struct{}
	done     chan struct{}
	recorded map[string]bool // journal entries already recorded (see record)
	warned   map[string]bool // degradations already logged as warnings
}

// options are unexported knobs for tests.
type options struct {
	nsPath        string        // network namespace to work in ("" = the process's)
	driftInterval time.Duration // 0 = defaultDriftInterval
	// fail, if set, is asked before each nftables table install ("nft
	// NAME") and sysctl write ("sysctl KEY"); an error is treated as the
	// kernel's refusal.
	fail func(what string) error
	// onDelete, if set, is told of each route and rule Close deletes
	// ("route NAME", "rule NAME"), in order.
	onDelete func(what string)
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

// record journals one change; a nil Journal records nothing. Each distinct
// entry (kind, name and data) is recorded at most once per Manager: undo is
// idempotent, so one entry covers every retry of the same change (a route
// the kernel keeps refusing, a failed sysctl write or nftables batch).
// Called with mu held.
func (m *Manager) record(kind, name string, data map[string]string) error {
	if m.j == nil {
		return nil
	}
	key := journalKey(kind, name, data)
	if m.recorded[key] {
		return nil
	}
	if err := m.j.Record(kind, name, data); err != nil {
		return err
	}
	if m.recorded == nil {
		m.recorded = map[string]bool{}
	}
	m.recorded[key] = true
	return nil
}

func journalKey(kind, name string, data map[string]string) string {
	var b strings.Builder
	b.WriteString(kind + "\x00" + name)
	for _, k := range slices.Sorted(maps.Keys(data)) {
		b.WriteString("\x00" + k + "=" + data[k])
	}
	return b.String()
}

// testFail is the fail option's answer for what (nil without the option).
func (m *Manager) testFail(what string) error {
	if m.opts.fail == nil {
		return nil
	}
	return m.opts.fail(what)
}

// degraded notes a best-effort part that failed: a warning the first time
// (until it succeeds again), debug after, and a note for the Result.
func (m *Manager) degraded(res *Result, what string, err error) {
	note := "degraded: " + what + ": " + err.Error()
	res.Degraded = append(res.Degraded, note)
	if m.warned[what] {
		m.log.Debug("still degraded", "part", what, "err", err)
		return
	}
	if m.warned == nil {
		m.warned = map[string]bool{}
	}
	m.warned[what] = true
	m.log.Warn("degraded: installing a best-effort part failed; routes and rules installed without it", "part", what, "err", err)
}

// recovered clears the warning state of what after it succeeded.
func (m *Manager) recovered(what string) { delete(m.warned, what) }

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

// closeLocked makes the Manager closed (so that no Apply can start the
// drift goroutine any more) and returns a function that stops the drift
// goroutine and waits for it; the caller runs it after releasing mu (the
// goroutine takes mu; seeing lcClosed, it does nothing more).
func (m *Manager) closeLocked() (wait func()) {
	m.state = lcClosed
	stop, done := m.stop, m.done
	m.stop, m.done = nil, nil
	return func() {
		if stop != nil {
			close(stop)
			<-done
		}
	}
}
