package engine

import (
	"slices"
	"strings"
	"sync"

	"petrel/internal/feature"
	"petrel/proto/daemonpb"
)

// Features the agent needs but its platform lacks (internal/feature). The
// subsystems say so through the interfaces they have on every platform:
// off Linux the route Manager's Apply and the DNS host Manager's Start
// return *feature.UnsupportedError for what the map or the defaults ask of
// them. The engine keeps the current set per source ("routes", "dns"),
// logs each feature once at warn level when it appears (again only after it
// was gone), and status lists them (Status().Unsupported).

const (
	srcRoutes = "routes" // route Manager: routes, exit node, routing peer
	srcDNS    = "dns"    // DNS host integration
)

type unsupportedState struct {
	mu sync.Mutex
	by map[string][]*feature.UnsupportedError // by source
}

// setUnsupported makes us the unsupported features of source, replacing
// its previous ones, and logs the features that were not reported before.
func (e *Engine) setUnsupported(source string, us []*feature.UnsupportedError) {
	s := &e.unsup
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.by[source]
	for _, u := range us {
		if !slices.ContainsFunc(old, func(o *feature.UnsupportedError) bool { return o.Feature == u.Feature }) {
			e.log.Warn("feature not supported on this platform", "feature", string(u.Feature),
				"need", u.Need, "lacks", u.Lacks, "os", u.OS)
		}
	}
	if len(us) == 0 {
		delete(s.by, source)
		return
	}
	if s.by == nil {
		s.by = map[string][]*feature.UnsupportedError{}
	}
	s.by[source] = slices.Clone(us)
}

// unsupported returns the current unsupported feature f (nil if none).
func (e *Engine) unsupported(f feature.Name) *feature.UnsupportedError {
	s := &e.unsup
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, us := range s.by {
		for _, u := range us {
			if u.Feature == f {
				return u
			}
		}
	}
	return nil
}

// unsupportedStatus fills status's unsupported features, sorted by name.
func (e *Engine) unsupportedStatus(st *daemonpb.StatusResponse) {
	s := &e.unsup
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, us := range s.by {
		for _, u := range us {
			st.Unsupported = append(st.Unsupported, &daemonpb.UnsupportedFeature{Feature: string(u.Feature), Message: u.Error()})
		}
	}
	slices.SortFunc(st.Unsupported, func(a, b *daemonpb.UnsupportedFeature) int { return strings.Compare(a.Feature, b.Feature) })
}
