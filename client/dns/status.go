package dns

import (
	"net/netip"
	"sort"
	"time"
)

// Status is a snapshot of the resolver for `petrel dns status` and the
// agent's status JSON.
type Status struct {
	State     string   `json:"state"` // "new", "started", "closed"
	Listeners []string `json:"listeners"`
	Domain    string   `json:"domain"`
	// Bypass lists the original nameservers the bypass resolver uses;
	// empty means there is no bypass (cache lookups go through the chain).
	Bypass    []string           `json:"bypass"`
	Handlers  []HandlerStatus    `json:"handlers"`
	Upstreams []UpstreamStatus   `json:"upstreams"`
	Cache     []CacheEntryStatus `json:"cache"`
	// ServerNames are the exact names of the management-domain cache;
	// PoolRoots the relay pool roots whose subdomains it also serves.
	ServerNames []string     `json:"server_names"`
	PoolRoots   []string     `json:"pool_roots"`
	Zones       []ZoneStatus `json:"zones"`
	// BadRecords counts zone records skipped because they did not parse.
	BadRecords int `json:"bad_records,omitempty"`
}

// HandlerStatus is one link of the chain, in the order queries visit them.
type HandlerStatus struct {
	Priority int    `json:"priority"`
	Name     string `json:"name"`
	Domain   string `json:"domain"`
	// Servers lists the upstreams of group and original handlers.
	Servers []string `json:"servers,omitempty"`
}

// UpstreamStatus is the passive health of one upstream server.
type UpstreamStatus struct {
	Server    string `json:"server"`
	Healthy   bool   `json:"healthy"`
	DownUntil string `json:"down_until,omitempty"`
	LastError string `json:"last_error,omitempty"`
	OK        uint64 `json:"ok"`
	Failures  uint64 `json:"failures"`
}

// ZoneStatus is one compiled local zone.
type ZoneStatus struct {
	Domain  string `json:"domain"`
	Records int    `json:"records"`
}

// Status returns a snapshot. Safe to call at any time.
func (r *Resolver) Status() Status {
	r.mu.Lock()
	st := Status{State: r.life.String()}
	for _, a := range r.addrs {
		st.Listeners = append(st.Listeners, a.String())
	}
	r.mu.Unlock()
	s := r.state.Load()
	st.Domain = defaultDomain
	if d, ok := canonName(s.settings.Domain); ok {
		st.Domain = d
	}
	for _, b := range r.bypassList() {
		st.Bypass = append(st.Bypass, b.String())
	}
	for _, l := range s.chain.links {
		hs := HandlerStatus{Priority: l.prio, Name: l.h.Name(), Domain: l.domain}
		if g, ok := l.h.(*groupHandler); ok {
			for _, sv := range g.servers {
				hs.Servers = append(hs.Servers, sv.String())
			}
		}
		st.Handlers = append(st.Handlers, hs)
	}
	for _, z := range s.zone.zones {
		n := 0
		for _, rrs := range z.rrs {
			n += len(rrs)
		}
		st.Zones = append(st.Zones, ZoneStatus{Domain: z.origin, Records: n})
	}
	st.BadRecords = s.zone.bad
	st.Upstreams = r.upstreamStatus(s)
	st.Cache, st.ServerNames, st.PoolRoots = r.cache.status()
	return st
}

func (r *Resolver) upstreamStatus(s *state) []UpstreamStatus {
	servers := map[netip.AddrPort]bool{}
	for _, b := range r.bypassList() {
		servers[b] = true
	}
	for _, g := range s.groups {
		for _, sv := range g.servers {
			servers[sv] = true
		}
	}
	if s.original != nil {
		for _, sv := range s.original.servers {
			servers[sv] = true
		}
	}
	now := r.clock()
	r.health.mu.Lock()
	defer r.health.mu.Unlock()
	out := make([]UpstreamStatus, 0, len(servers))
	for sv := range servers {
		u := UpstreamStatus{Server: sv.String(), Healthy: true}
		if h := r.health.m[sv]; h != nil {
			u.OK, u.Failures, u.LastError = h.ok, h.fail, h.lastErr
			if now.Before(h.downUntil) {
				u.Healthy = false
				u.DownUntil = h.downUntil.UTC().Format(time.RFC3339)
			}
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Server < out[j].Server })
	return out
}
