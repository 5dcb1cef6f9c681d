// Package metrics holds what petrel-server and the agent share to export
// Prometheus metrics: a per-instance Registry (with the Go runtime and
// process collectors), the metrics listener that serves it at /metrics and,
// when asked, Go's profiler at /debug/pprof/ (listener.go), and Family, a
// helper for collectors that read a component's own counters at scrape
// time (family.go).
//
// Components never import this package or Prometheus: each keeps plain
// counters (atomics) and offers a snapshot or a small observer interface;
// the binaries' assembly packages (server, client/daemon) adapt those into
// collectors. Nothing here is package-level state, so many servers and
// agents can run in one test process, each with its own Registry.
//
// Imported by server and client/daemon (and their tests). A Registry and a
// Listener are safe for concurrent use.
package metrics

import (
	"regexp"
	"slices"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registry is one process part's (a server's, an agent's) set of
// collectors. It remembers what was registered so tests can list every
// metric name it exports (Names).
type Registry struct {
	reg *prometheus.Registry

	mu         sync.Mutex
	collectors []prometheus.Collector
}

// NewRegistry returns a registry holding the Go runtime and process
// collectors.
func NewRegistry() *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return r
}

// MustRegister adds collectors; it panics on a programming error (a name
// registered twice, inconsistent descriptors).
func (r *Registry) MustRegister(cs ...prometheus.Collector) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reg.MustRegister(cs...)
	r.collectors = append(r.collectors, cs...)
}

// Gatherer is what the /metrics handler and tests read.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// descName pulls the fully qualified name out of a Desc's String form
// (client_golang keeps the name unexported).
var descName = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*")`)

// Names lists, sorted, the name of every metric family the registered
// collectors describe, whether or not it has a series yet (a vector
// without children describes itself but gathers nothing).
func (r *Registry) Names() []string {
	r.mu.Lock()
	cs := slices.Clone(r.collectors)
	r.mu.Unlock()
	ch := make(chan *prometheus.Desc)
	go func() {
		for _, c := range cs {
			c.Describe(ch)
		}
		close(ch)
	}()
	seen := map[string]bool{}
	for d := range ch {
		if m := descName.FindStringSubmatch(d.String()); m != nil {
			if name, err := strconv.Unquote(m[1]); err == nil {
				seen[name] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
