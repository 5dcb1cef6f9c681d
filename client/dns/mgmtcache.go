package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

const (
	defaultCacheTTL = 5 * time.Minute
	// refreshBackoff is how long a failed refresh (or a failed miss) waits
	// before the next lookup of that name and type.
	refreshBackoff = 30 * time.Second
	// lookupTimeout bounds one cache lookup, foreground or background.
	lookupTimeout = 5 * time.Second
	// missWait is how long a query that misses waits for the lookup before
	// passing on; the lookup continues and fills the cache.
	missWait = 2500 * time.Millisecond
	// staleAnswerTTL is the TTL handed out with a stale answer.
	staleAnswerTTL = 10
	// maxOnDemand caps the entries created under relay pool roots.
	maxOnDemand = 1024
)

var (
	errNotCached = errors.New("name left the server domains")
	errEmpty     = errors.New("empty answer")
)

type cacheKey struct {
	name  string
	qtype uint16
}

// cacheData is one lookup result. Immutable once stored.
type cacheData struct {
	rrs     []mdns.RR // CNAME chain and A/AAAA records; empty = NODATA
	fetched time.Time
	source  string
}

// cacheEntry is a cached name and type. Its fields change under mgmtCache.mu.
type cacheEntry struct {
	data     *cacheData
	onDemand bool      // created under a relay pool root
	retryAt  time.Time // refresh back-off after a failure
	lastErr  string
}

// flight is one lookup in progress; concurrent queries for the same key wait
// on it instead of starting their own (single-flight).
type flight struct {
	done    chan struct{}
	refresh bool
	data    *cacheData // set before done closes when the result is usable
	err     error
}

// cacheLookup performs one lookup for the cache (bypass or chain) and names
// the path it took.
type cacheLookup func(ctx context.Context, q *mdns.Msg) (*mdns.Msg, string, error)

// mgmtCache is the management-domain cache (docs/dns.md, "The control-plane lifeline"). It lives
// as long as the Resolver; Apply does not replace it.
type mgmtCache struct {
	clock  func() time.Time
	ttl    time.Duration
	log    *slog.Logger
	lookup cacheLookup
	// spawn runs f on a tracked goroutine; false once the resolver closed.
	spawn func(f func(ctx context.Context)) bool

	domains atomic.Pointer[domainSet] // snapshot of names and roots
	// gen moves (under mu) whenever an answer the cache gives, or whether
	// it answers at all, can change: setDomains, and a lookup storing an
	// entry. The UDP readers' pre-encoded answers carry it (answers.go).
	// The bumps in run are belt and braces: a kept hit expires by the time
	// its entry goes stale (hitUntil), which a refresh requires, and
	// nothing is kept for a name the cache considers but has no entry for.
	gen atomic.Uint64

	mu        sync.Mutex
	cats      map[DomainCategory][]string
	mgmtHost  string
	names     map[string]bool // exact names: every category plus mgmtHost
	roots     map[string]bool // relay pool roots
	entries   map[cacheKey]*cacheEntry
	flights   map[cacheKey]*flight
	missUntil map[cacheKey]time.Time
	onDemand  int

	ctr cacheCounters // metrics.go
}

func newMgmtCache(clock func() time.Time, ttl time.Duration, log *slog.Logger, lookup cacheLookup, spawn func(func(context.Context)) bool) *mgmtCache {
	return &mgmtCache{
		clock: clock, ttl: ttl, log: log, lookup: lookup, spawn: spawn,
		cats:      map[DomainCategory][]string{},
		names:     map[string]bool{},
		roots:     map[string]bool{},
		entries:   map[cacheKey]*cacheEntry{},
		flights:   map[cacheKey]*flight{},
		missUntil: map[cacheKey]time.Time{},
	}
}

// domainSet is an immutable snapshot of the cache's names for the
// lock-free filter in ServeDNS.
type domainSet struct {
	names map[string]bool
	roots map[string]bool
}

func (d *domainSet) underRoot(name string) bool { return underRoot(d.roots, name) }

// underRoot reports whether name lies strictly below a pool root. mu held.
func (c *mgmtCache) underRoot(name string) bool { return underRoot(c.roots, name) }

func underRoot(roots map[string]bool, name string) bool {
	if len(roots) == 0 {
		return false
	}
	for p := parentName(name); p != "."; p = parentName(p) {
		if roots[p] {
			return true
		}
	}
	return false
}

// setDomains applies a (partial) server-domain update: carried categories
// are replaced, names that left are dropped (never the management host),
// and new names are resolved at once, concurrently. setHost says whether
// host (canonical, or "" for none) replaces the management host.
func (c *mgmtCache) setDomains(d ServerDomains, host string, setHost bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cat := range categories {
		list, ok := d.carries(cat)
		if !ok {
			continue
		}
		var names []string
		for _, n := range list {
			if cn, ok := canonName(n); ok {
				names = append(names, cn)
			}
		}
		c.cats[cat] = names
	}
	if setHost {
		c.mgmtHost = host
	}
	names := map[string]bool{}
	for _, list := range c.cats {
		for _, n := range list {
			names[n] = true
		}
	}
	if c.mgmtHost != "" {
		names[c.mgmtHost] = true
	}
	roots := map[string]bool{}
	for _, n := range c.cats[CategoryRelayPoolRoots] {
		roots[n] = true
	}
	old := c.names
	c.names, c.roots = names, roots
	c.domains.Store(&domainSet{names: names, roots: roots})
	c.gen.Add(1)
	for k, e := range c.entries {
		if names[k.name] {
			e.onDemand = false
			continue
		}
		if e.onDemand && c.underRoot(k.name) {
			continue
		}
		c.dropEntry(k, e)
	}
	for k := range c.missUntil {
		if !names[k.name] && !c.underRoot(k.name) {
			delete(c.missUntil, k)
		}
	}
	var added []string
	for n := range names {
		if !old[n] {
			added = append(added, n)
		}
	}
	sort.Strings(added)
	for _, n := range added {
		for _, t := range []uint16{mdns.TypeA, mdns.TypeAAAA} {
			k := cacheKey{n, t}
			delete(c.missUntil, k)
			if c.entries[k] == nil && c.flights[k] == nil {
				c.startFlight(k, false)
			}
		}
	}
	if len(added) > 0 || len(old) != len(names) {
		c.log.Info("server domains updated", "names", len(names), "pool_roots", len(roots), "added", added)
	}
}

func (c *mgmtCache) dropEntry(k cacheKey, e *cacheEntry) {
	if e.onDemand {
		c.onDemand--
	}
	delete(c.entries, k)
}

// ServeDNS implements handler at priority 150.
func (c *mgmtCache) Name() string { return "mgmt-cache" }

// inlineSafe: hits (fresh or stale) and passes are answered from memory;
// a miss that would wait for a lookup returns needIO before starting it.
func (c *mgmtCache) inlineSafe() {}

func (c *mgmtCache) ServeDNS(ctx context.Context, q *mdns.Msg) (*mdns.Msg, string) {
	qq := q.Question[0]
	if qq.Qtype != mdns.TypeA && qq.Qtype != mdns.TypeAAAA {
		return nil, ""
	}
	k := cacheKey{lowerName(qq.Name), qq.Qtype}
	// Lock-free filter: most queries are not for server domains.
	if d := c.domains.Load(); d == nil || (!d.names[k.name] && !d.underRoot(k.name)) {
		return nil, "" // a subdomain of a non-pool name, or not ours
	}
	now := c.clock()
	c.mu.Lock()
	exact := c.names[k.name]
	if !exact && !c.underRoot(k.name) {
		c.mu.Unlock()
		return nil, ""
	}
	if e := c.entries[k]; e != nil {
		age := now.Sub(e.data.fetched)
		stale := age >= c.ttl
		if stale && !now.Before(e.retryAt) && c.flights[k] == nil {
			c.startFlight(k, true)
		}
		d := e.data
		c.mu.Unlock()
		if stale {
			c.ctr.stale.Add(1) // stale answers are never learnt, so never probed
			return c.answer(q, d, age), "cache stale (" + d.source + ")"
		}
		if !isProbe(ctx) {
			c.ctr.hits.Add(1)
		}
		return c.answer(q, d, age), "cache fresh (" + d.source + ")"
	}
	if now.Before(c.missUntil[k]) {
		c.mu.Unlock()
		return nil, ""
	}
	if isInline(ctx) {
		c.mu.Unlock()
		return needIO, ""
	}
	f := c.flights[k]
	if f == nil {
		f = c.startFlight(k, false)
	}
	c.mu.Unlock()
	c.ctr.misses.Add(1)

	wait := time.NewTimer(missWait)
	defer wait.Stop()
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ""
	case <-wait.C:
		return nil, ""
	}
	if f.err != nil || f.data == nil {
		return nil, ""
	}
	how := "cache miss, resolved (" + f.data.source + ")"
	if !exact {
		how = "pool subdomain on demand (" + f.data.source + ")"
	}
	return c.answer(q, f.data, 0), how
}

// startFlight launches the lookup for k on a background goroutine. mu held.
func (c *mgmtCache) startFlight(k cacheKey, refresh bool) *flight {
	f := &flight{done: make(chan struct{}), refresh: refresh}
	c.flights[k] = f
	if !c.spawn(func(ctx context.Context) { c.run(ctx, k, f) }) {
		delete(c.flights, k)
		f.err = context.Canceled
		close(f.done)
	}
	return f
}

// run performs the lookup of one flight and stores its outcome.
func (c *mgmtCache) run(ctx context.Context, k cacheKey, f *flight) {
	defer close(f.done)
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	q := new(mdns.Msg)
	q.SetQuestion(k.name, k.qtype)
	resp, source, err := c.lookup(lctx, q)
	cancel()
	var rrs []mdns.RR
	if err == nil {
		if resp.Rcode != mdns.RcodeSuccess {
			err = fmt.Errorf("rcode %s", mdns.RcodeToString[resp.Rcode])
		} else {
			rrs = addressAnswer(resp, k.qtype)
		}
	}
	now := c.clock()

	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.flights, k)
	exact := c.names[k.name]
	pool := !exact && c.underRoot(k.name)
	if !exact && !pool {
		f.err = errNotCached
		return
	}
	e := c.entries[k]
	if err == nil && len(rrs) == 0 && (pool || (e != nil && e.onDemand)) {
		err = errEmpty // NODATA is a valid answer for exact names only
	}
	if err != nil {
		f.err = err
		if e != nil {
			e.retryAt = now.Add(refreshBackoff)
			e.lastErr = err.Error()
		} else {
			c.noteMiss(k, now)
		}
		if ctx.Err() == nil {
			c.log.Warn("management-domain lookup failed", "name", k.name, "type", mdns.TypeToString[k.qtype], "stale_kept", e != nil, "err", err)
		}
		return
	}
	d := &cacheData{rrs: rrs, fetched: now, source: source}
	f.data = d
	delete(c.missUntil, k)
	switch {
	case e != nil && f.refresh:
		e.data, e.retryAt, e.lastErr = d, time.Time{}, ""
		c.gen.Add(1)
	case e != nil:
		// An entry appeared while this miss was in flight: an on-demand
		// (or late) answer never overwrites it.
		f.data = e.data
	case pool && c.onDemand >= maxOnDemand:
		// Answer this query but do not grow the cache further.
	default:
		c.entries[k] = &cacheEntry{data: d, onDemand: pool}
		if pool {
			c.onDemand++
		}
		c.gen.Add(1)
	}
}

// considers reports whether ServeDNS looks name/qtype up at all (else it
// passes, whatever the time, until the next setDomains).
func (c *mgmtCache) considers(name string, qtype uint16) bool {
	if qtype != mdns.TypeA && qtype != mdns.TypeAAAA {
		return false
	}
	d := c.domains.Load()
	return d != nil && (d.names[name] || d.underRoot(name))
}

// hitUntil says until when a fresh answer for k, given at or after now,
// stays byte for byte the same: until the TTL it carries (whole seconds of
// freshness left, see answer) next drops, which is never after the entry
// goes stale. It reports false when the cache changed since gen or k has
// no entry fresh at now.
func (c *mgmtCache) hitUntil(k cacheKey, now time.Time, gen uint64) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[k]
	if c.gen.Load() != gen || e == nil {
		return time.Time{}, false
	}
	age := now.Sub(e.data.fetched)
	if age < 0 || age >= c.ttl {
		return time.Time{}, false
	}
	secs := (c.ttl - age + time.Second - 1) / time.Second // the TTL answer gives at now
	return e.data.fetched.Add(c.ttl - (secs-1)*time.Second), true
}

// noteMiss starts the back-off of a failed miss. The table is bounded:
// expired marks are swept when it grows, and past the bound new marks are
// not recorded (random names under a pool root must not grow memory). mu held.
func (c *mgmtCache) noteMiss(k cacheKey, now time.Time) {
	if len(c.missUntil) >= maxOnDemand {
		for mk, until := range c.missUntil {
			if !now.Before(until) {
				delete(c.missUntil, mk)
			}
		}
		if len(c.missUntil) >= maxOnDemand {
			return
		}
	}
	c.missUntil[k] = now.Add(refreshBackoff)
}

// addressAnswer keeps the CNAME chain and the records of type qtype.
func addressAnswer(resp *mdns.Msg, qtype uint16) []mdns.RR {
	var out []mdns.RR
	found := false
	for _, rr := range resp.Answer {
		switch rr.Header().Rrtype {
		case qtype:
			found = true
			out = append(out, rr)
		case mdns.TypeCNAME:
			out = append(out, rr)
		}
	}
	if !found {
		return nil
	}
	return out
}

// answer builds a non-authoritative reply from d. Fresh answers carry the
// smaller of the record TTL and the remaining freshness; stale ones a short
// TTL so clients come back soon.
func (c *mgmtCache) answer(q *mdns.Msg, d *cacheData, age time.Duration) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	ttl := uint32(staleAnswerTTL)
	if rem := c.ttl - age; rem > 0 {
		ttl = uint32((rem + time.Second - 1) / time.Second)
	}
	m.Answer = make([]mdns.RR, len(d.rrs))
	for i, rr := range d.rrs {
		cp := mdns.Copy(rr)
		if cp.Header().Ttl > ttl {
			cp.Header().Ttl = ttl
		}
		m.Answer[i] = cp
	}
	return m
}

// CacheEntryStatus describes one management-domain cache entry.
type CacheEntryStatus struct {
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	Addrs      []string `json:"addrs"`
	AgeSeconds float64  `json:"age_seconds"`
	Stale      bool     `json:"stale"`
	OnDemand   bool     `json:"on_demand,omitempty"`
	Refreshing bool     `json:"refreshing,omitempty"`
	Source     string   `json:"source"`
	LastError  string   `json:"last_error,omitempty"`
	RetryAt    string   `json:"retry_at,omitempty"`
}

func (c *mgmtCache) status() (entries []CacheEntryStatus, names, roots []string) {
	now := c.clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		s := CacheEntryStatus{
			Name: k.name, Type: mdns.TypeToString[k.qtype],
			AgeSeconds: now.Sub(e.data.fetched).Seconds(),
			Stale:      now.Sub(e.data.fetched) >= c.ttl,
			OnDemand:   e.onDemand, Refreshing: c.flights[k] != nil,
			Source: e.data.source, LastError: e.lastErr,
		}
		if now.Before(e.retryAt) {
			s.RetryAt = e.retryAt.UTC().Format(time.RFC3339)
		}
		for _, rr := range e.data.rrs {
			switch v := rr.(type) {
			case *mdns.A:
				s.Addrs = append(s.Addrs, v.A.String())
			case *mdns.AAAA:
				s.Addrs = append(s.Addrs, v.AAAA.String())
			}
		}
		entries = append(entries, s)
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Name != entries[j].Name {
			return entries[i].Name < entries[j].Name
		}
		return entries[i].Type < entries[j].Type
	})
	for n := range c.names {
		names = append(names, n)
	}
	for n := range c.roots {
		roots = append(roots, n)
	}
	sort.Strings(names)
	sort.Strings(roots)
	return entries, names, roots
}

// canonHost turns the management URL's host into a cache name ("" for an
// IP literal or an invalid name).
func canonHost(h string) string {
	h = strings.TrimSpace(h)
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return ""
	}
	n, _ := canonName(h)
	return n
}
