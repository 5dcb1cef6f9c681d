package host

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Modes reported by Manager.Mode and accepted in Config.Mode.
const (
	ModeAuto     = "auto"
	ModeFile     = "file"
	ModeResolved = "resolved"
	ModeOff      = "off"
)

// Journal kinds this package records (see Undoers).
const (
	KindResolvConf   = "resolvconf"    // name: resolv.conf path
	KindResolvedLink = "resolved-link" // name: overlay interface
)

// DefaultResolvConf is used when Config.ResolvConf is empty.
const DefaultResolvConf = "/etc/resolv.conf"

// Errors callers may branch on.
var (
	ErrStarted = errors.New("dns host: already started")
	ErrClosed  = errors.New("dns host: closed")
	// ErrOwnFile: resolv.conf is Petrel's own file and no backup of the
	// original exists; we never capture our own file as the original.
	ErrOwnFile = errors.New("resolv.conf was written by Petrel and no backup exists")
)

// Journal is the agent's crash journal. Record must be durable when it
// returns: it is called before each host change.
type Journal interface {
	Record(kind, name string, data map[string]string) error
}

// Original is the host's resolver configuration before Petrel changed it.
type Original struct {
	Nameservers []netip.AddrPort
	Search      []string
	Options     []string
}

// Config configures a Manager. Zero values take the documented defaults.
type Config struct {
	ResolvConf   string     // default "/etc/resolv.conf"
	StateDir     string     // where the backup lives (agent state dir)
	Interface    string     // overlay interface (systemd-resolved per-link config)
	Nameserver   netip.Addr // our resolver's address (port 53)
	Search       []string   // our search domains, placed before the original ones
	MatchDomains []string   // routing domains for systemd-resolved; "~." or "." = we are primary
	Mode         string     // "auto" (default), "file", "resolved", "off"
	Logger       *slog.Logger
	Journal      Journal // may be nil (no crash recovery)
}

// Status is a snapshot for the agent's status output.
type Status struct {
	Mode       string `json:"mode"`
	ResolvConf string `json:"resolv_conf,omitempty"`
	Backup     string `json:"backup,omitempty"`
	Interface  string `json:"interface,omitempty"`
	Repairs    int    `json:"repairs"` // our file rewritten after a foreign write
	Adopted    int    `json:"adopted"` // foreign writes taken as the new original
	LastError  string `json:"last_error,omitempty"`
}

type lifecycle int

const (
	stateNew lifecycle = iota
	stateStarted
	stateClosed
)

// Manager points the host's resolver at the agent and back. Its methods
// are safe for concurrent use.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	state   lifecycle
	mode    string
	orig    Original
	search  []string
	match   []string
	repairs int
	adopted int
	lastErr string

	plat platform // mode-specific state and test seams (host_linux.go / host_default.go)

	// watcher (file mode)
	pollEvery time.Duration
	settle    time.Duration
	stop      chan struct{}
	done      chan struct{}
}

// New validates cfg and returns a Manager that has not touched the host.
func New(cfg Config) (*Manager, error) {
	if cfg.Mode == "" {
		cfg.Mode = ModeAuto
	}
	switch cfg.Mode {
	case ModeAuto, ModeFile, ModeResolved, ModeOff:
	default:
		return nil, fmt.Errorf("dns host: unknown mode %q", cfg.Mode)
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = DefaultResolvConf
	}
	if cfg.Mode != ModeOff {
		if !cfg.Nameserver.IsValid() {
			return nil, errors.New("dns host: nameserver address required")
		}
		if cfg.StateDir == "" && cfg.Mode != ModeResolved {
			return nil, errors.New("dns host: state dir required")
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		cfg:       cfg,
		log:       log.With("component", "dns-host"),
		search:    slices.Clone(cfg.Search),
		match:     slices.Clone(cfg.MatchDomains),
		pollEvery: 2 * time.Second,
		settle:    100 * time.Millisecond,
	}
	m.plat = newPlatform()
	return m, nil
}

// Original returns the host's configuration captured at Start (updated when
// the host rewrites its resolv.conf while we run). Zero before Start.
func (m *Manager) Original() Original {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Original{
		Nameservers: slices.Clone(m.orig.Nameservers),
		Search:      slices.Clone(m.orig.Search),
		Options:     slices.Clone(m.orig.Options),
	}
}

// Mode returns "file", "resolved" or "off"; empty before Start.
func (m *Manager) Mode() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mode
}

// Start detects the mode, captures the original configuration, backs it up
// and installs ours. It does not block. A failed Start has undone its
// changes (as Close would) and leaves the Manager closed.
func (m *Manager) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.state {
	case stateStarted:
		return ErrStarted
	case stateClosed:
		return ErrClosed
	}
	m.state = stateStarted
	if err := m.startPlatform(); err != nil {
		if cerr := m.closeLocked(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("roll back: %w", cerr))
		}
		m.state = stateClosed
		m.lastErr = err.Error()
		return err
	}
	m.log.Info("host resolver configured", "mode", m.mode, "nameserver", m.cfg.Nameserver)
	return nil
}

// Update replaces our search domains and match (routing) domains. It may be
// called with identical values; before Start it only stores them.
func (m *Manager) Update(search, match []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == stateClosed {
		return ErrClosed
	}
	m.search, m.match = slices.Clone(search), slices.Clone(match)
	if m.state != stateStarted {
		return nil
	}
	if err := m.updatePlatform(); err != nil {
		m.lastErr = err.Error()
		return err
	}
	return nil
}

// Status returns a snapshot.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{Mode: m.mode, Repairs: m.repairs, Adopted: m.adopted, LastError: m.lastErr}
	m.fillStatus(&s)
	return s
}

// Close restores the host's configuration and stops the watcher. It is
// idempotent; after Close the Manager cannot be started again.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.state == stateClosed {
		m.mu.Unlock()
		return nil
	}
	wasStarted := m.state == stateStarted
	m.state = stateClosed
	stop, done := m.stop, m.done
	m.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	if !wasStarted {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.closeLocked()
	if err != nil {
		m.lastErr = err.Error()
	}
	return err
}

// startWatcher runs fn every pollEvery until Close. Called with mu held.
func (m *Manager) startWatcher(fn func(stop <-chan struct{})) {
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go func(stop <-chan struct{}, done chan<- struct{}) {
		defer close(done)
		t := time.NewTicker(m.pollEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fn(stop)
			}
		}
	}(m.stop, m.done)
}
