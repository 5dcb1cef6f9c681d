// Package daemon is the long-running side of the petrel agent: it owns the
// state directory (key, profile, cleanup journal), runs the engine, and
// serves the local API (gRPC over a unix socket) that the CLI uses. The
// socket is 0600, or, for a root daemon, 0660 to an operator group whose
// members may call only the read-only calls (socket.go checks each
// caller's uid).
//
// Imported by cmd/petrel only. A Daemon's methods are safe for concurrent
// use; the engine is started and stopped under the daemon's mutex.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"petrel/client/engine"
	"petrel/internal/backoff"
	"petrel/internal/logring"
	"petrel/internal/metrics"
	"petrel/proto/daemonpb"
)

// Options configure a daemon (read once from flags in cmd/petrel).
type Options struct {
	StateDir string
	Socket   string // default StateDir/petrel.sock
	// OperatorGroup may call the read-only part of the local API when the
	// daemon runs as root ("" = nobody but root; socket.go).
	OperatorGroup string
	Netstack      bool
	InterfaceName string
	MTU           int
	WGPort        int
	SOCKS5Addr    string        // netstack mode: loopback SOCKS5 listen address ("" = 127.0.0.1:0)
	DNSAddr       string        // netstack mode: resolver listen address ("" = 127.0.0.1:0)
	DNSMode       string        // host resolver integration: auto, file, resolved, off
	DNSNoBypass   bool          // debug knob: no bypass resolver for control-plane names
	DNSCacheTTL   time.Duration // debug knob: control-plane cache TTL (0 = default)
	NoFirewall    bool          // debug knob: no packet filter
	ICELoopback   bool          // offer loopback ICE candidates (single-host demos/tests)
	ForceRelay    bool          // never try direct paths
	// CAFile holds the PEM certificates trusted for an https:// management
	// server and its signal and rels:// relays ("" = the system roots).
	CAFile string
	Logger *slog.Logger
	// Tune lets tests adjust the engine config (e.g. loopback ICE candidates).
	Tune func(*engine.Config)
	// MetricsListen is the HOST:PORT serving Prometheus /metrics (and,
	// with Pprof, /debug/pprof/); "" or "off" = none (metrics.go).
	MetricsListen string
	Pprof         bool
}

// Daemon runs the agent.
type Daemon struct {
	opts    Options
	state   StateDir
	journal *Journal
	log     *slog.Logger

	mu              sync.Mutex
	cancelReconnect context.CancelFunc // background reconnect of a saved profile
	eng             *engine.Engine
	lastErr         string
	server          *grpc.Server
	listener        net.Listener
	stopped         bool
	done            chan struct{}
	logs            *logring.Ring // recent log lines (petrel debug bundle)

	// upProgress reports login retries to the `petrel up` waiting on them
	// (nil when nobody waits); engines call it from their own goroutines.
	upProgress atomic.Pointer[func(*daemonpb.UpProgress)]

	// Metrics (metrics.go): live is eng, readable without mu.
	live      atomic.Pointer[engine.Engine]
	metrics   *metrics.Registry
	metricsLn *metrics.Listener
}

// New returns a daemon; nothing is started.
func New(opts Options) *Daemon {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ring := logring.New(logring.DefaultLines, logring.DefaultLineLen)
	opts.Logger = logring.Tee(opts.Logger, ring)
	if opts.Socket == "" {
		opts.Socket = filepath.Join(opts.StateDir, SocketFile)
	}
	d := &Daemon{
		opts:    opts,
		state:   StateDir{Path: opts.StateDir},
		journal: OpenJournal(filepath.Join(opts.StateDir, JournalFile)),
		log:     opts.Logger.With("component", "daemon"),
		logs:    ring,
		done:    make(chan struct{}),
		metrics: metrics.NewRegistry(),
	}
	d.metrics.MustRegister(newAgentCollector(d))
	return d
}

// Start recovers from a crashed predecessor (journal replay), opens the
// local API socket and, when a profile is registered, reconnects in the
// background. It does not block.
func (d *Daemon) Start(ctx context.Context) error {
	loose, err := d.state.ensure()
	if err != nil {
		return err
	}
	if loose != 0 {
		d.log.Warn("state dir was open to other users; tightened to 0700", "dir", d.state.Path, "was", fmt.Sprintf("%04o", loose))
	}
	if n, err := d.journal.Replay(HostUndoers()); n > 0 || err != nil {
		d.log.Info("cleaned up after previous run", "undone", n, "err", err)
	}
	ln, err := d.listenUnix(d.opts.Socket)
	if err != nil {
		return err
	}
	if err := d.startMetrics(); err != nil {
		ln.Close()
		os.Remove(d.opts.Socket)
		return err
	}
	srv := grpc.NewServer(serverOptions()...)
	daemonpb.RegisterDaemonServer(srv, &api{d: d})
	d.mu.Lock()
	d.server, d.listener = srv, ln
	d.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()

	prof, err := d.state.LoadProfile()
	if err != nil {
		d.log.Error("not reconnecting: the saved profile is unreadable; fix or remove it, then run petrel up", "err", err)
	}
	if err == nil && prof.Registered && prof.ManagementURL != "" {
		rctx, cancel := context.WithCancel(context.Background())
		d.mu.Lock()
		d.cancelReconnect = cancel
		d.mu.Unlock()
		go d.reconnect(rctx)
	}
	return nil
}

// reconnectAttempt bounds one login attempt of reconnect (the engine
// retries within it); a variable for tests.
var reconnectAttempt = 30 * time.Second

// reconnect brings a registered agent up after the daemon starts, retrying
// with capped, jittered backoff for as long as management is unreachable
// (an agent restarted during an outage must come back by itself). It stops
// when the engine is up, management refuses the login, `petrel down` or
// `up` takes over, or the daemon stops.
func (d *Daemon) reconnect(ctx context.Context) {
	bo := backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
	for {
		cctx, cancel := context.WithTimeout(ctx, reconnectAttempt)
		_, err := d.up(cctx, &daemonpb.UpRequest{}, nil)
		cancel()
		switch {
		case err == nil || ctx.Err() != nil:
			return
		case errors.Is(err, engine.ErrLoginRefused):
			d.log.Warn("reconnect with saved profile: management refused the login; run petrel up with a setup key", "err", err)
			return
		}
		wait := bo.Next()
		d.log.Warn("reconnect with saved profile; retrying", "err", err, "in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// stopReconnect ends a background reconnect (d.mu held).
func (d *Daemon) stopReconnectLocked() {
	if d.cancelReconnect != nil {
		d.cancelReconnect()
		d.cancelReconnect = nil
	}
}

// Socket returns the local API socket path.
func (d *Daemon) Socket() string { return d.opts.Socket }

// Stop brings the engine down, removes what it added and closes the API.
// Idempotent.
func (d *Daemon) Stop() {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.stopped = true
	srv := d.server
	d.mu.Unlock()
	_ = d.down()
	if srv != nil {
		srv.Stop()
	}
	d.metricsLn.Stop()
	os.Remove(d.opts.Socket)
	close(d.done)
}

// Done is closed when Stop has finished.
func (d *Daemon) Done() <-chan struct{} { return d.done }

func (d *Daemon) down() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopReconnectLocked()
	d.stopEngineLocked()
	return nil
}

func (d *Daemon) stopEngineLocked() {
	if d.eng == nil {
		return
	}
	d.live.Store(nil)
	d.eng.Stop()
	d.eng = nil
	if n, err := d.journal.Replay(HostUndoers()); err != nil {
		d.log.Warn("cleanup after engine stop", "undone", n, "err", err)
	}
}

func (d *Daemon) engine() *engine.Engine {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.eng
}
