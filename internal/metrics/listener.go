package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Off is the listen address that disables the metrics listener.
const Off = "off"

// ParseListen checks a --metrics-listen value: HOST:PORT (port 0 picks
// one; an empty host means every address), or "off" or "" for no
// listener, which it returns as "".
func ParseListen(s string) (string, error) {
	if s == "" || strings.EqualFold(s, Off) {
		return "", nil
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q: want HOST:PORT or off", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return "", fmt.Errorf("%q: bad port", s)
	}
	return s, nil
}

// Options configure a Listener.
type Options struct {
	// Pprof also serves Go's profiler under /debug/pprof/ (heap,
	// goroutine, allocs, block, mutex, threadcreate, profile, trace,
	// symbol). /debug/pprof/cmdline is not served: a command line may hold
	// a database password.
	Pprof  bool
	Logger *slog.Logger
}

// Listener serves one Registry over HTTP on its own socket, apart from
// any public listener. Start it with Listen; Stop ends it.
type Listener struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
	once sync.Once
}

// Listen binds addr and serves reg at /metrics (and the profiler with
// opts.Pprof) in a background goroutine. Every other path is 404.
func Listen(addr string, reg *Registry, opts Options) (*Listener, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen on %s: %w", addr, err)
	}
	l := &Listener{ln: ln, done: make(chan struct{})}
	l.srv = &http.Server{
		Handler:           Handler(reg, opts.Pprof, log),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No write timeout: a CPU profile or trace streams for as long as
		// the client asked (?seconds=N).
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics listener stopped", "err", err)
		}
	}()
	if opts.Pprof && !isLoopback(ln.Addr()) {
		log.Warn("pprof is served on a non-loopback address; anyone who can reach it can profile this process", "addr", ln.Addr().String())
	}
	return l, nil
}

// Handler is the metrics listener's HTTP handler (exported for tests).
func Handler(reg *Registry, withPprof bool, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg.Gatherer(), promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	if withPprof {
		// Index serves the named profiles (/debug/pprof/heap, ...); it
		// answers 404 for cmdline, which is not a runtime profile.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/cmdline", http.NotFound)
	}
	return mux
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Stop closes the listener and its connections (a profile in progress is
// cut) and waits for the serving goroutine. Idempotent; nil-safe.
func (l *Listener) Stop() {
	if l == nil {
		return
	}
	l.once.Do(func() { _ = l.srv.Close() })
	<-l.done
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
