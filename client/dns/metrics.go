package dns

import (
	"context"
	"sort"
	"sync/atomic"

	mdns "github.com/miekg/dns"
)

// Counters for metrics. Every query a client sent is counted once, where
// its answer is decided: on a UDP reader (replayed, answered inline or
// rejected), on a slow-path goroutine, or on a miekg listener (TCP, UDP on
// unspecified addresses). The learning probe (answers.go), Query and
// LookupHost are not client queries and are not counted. The counters are
// fixed arrays of atomics indexed by handler kind and rcode: no lock and
// no allocation on the answer path.

// handlerKind is the chain link that answered, as a metric label.
type handlerKind uint8

const (
	kindMgmtCache handlerKind = iota
	kindLocalZone
	kindSearch
	kindMatchGroup
	kindPrimary
	kindOriginal
	kindServer // the server itself: refused, malformed, unsupported
	kindNone   // no handler answered: SERVFAIL
	kindOther  // a handler panicked, or one this file does not know
	numKinds
)

var kindNames = [numKinds]string{"mgmt-cache", "local-zone", "search-domain", "match-group", "primary", "original",
	"server", "none", "other"}

// rcodeSlots: rcodes 0..16 (16 is BADVERS) have their own slot, the rest
// share the last one.
const rcodeSlots = 18

type queryCounters struct {
	n [numKinds][rcodeSlots]atomic.Uint64
}

func (c *queryCounters) add(k handlerKind, rcode int) {
	c.n[k][rcodeSlot(rcode)].Add(1)
}

func rcodeSlot(rcode int) int {
	if rcode < 0 || rcode >= rcodeSlots-1 {
		return rcodeSlots - 1
	}
	return rcode
}

func rcodeName(slot int) string {
	if slot == mdns.RcodeBadVers {
		return "BADVERS" // the only rcode above 15 the resolver sends
	}
	if s, ok := mdns.RcodeToString[slot]; ok && slot < rcodeSlots-1 {
		return s
	}
	return "other"
}

// kindOf maps who answered to a handler kind (no allocation).
func kindOf(info answerInfo) handlerKind {
	switch info.h.(type) {
	case *mgmtCache:
		return kindMgmtCache
	case *zoneHandler:
		return kindLocalZone
	case *searchHandler:
		return kindSearch
	case *groupHandler:
		switch info.Priority {
		case PrioOriginal:
			return kindOriginal
		case PrioPrimary:
			return kindPrimary
		}
		return kindMatchGroup
	case nil:
		switch info.Handler {
		case "server":
			return kindServer
		case "none":
			return kindNone
		}
	}
	return kindOther
}

// countAnswer counts resp (nil: nothing was sent) as answered by info's
// handler.
func (r *Resolver) countAnswer(resp *mdns.Msg, info answerInfo) {
	if resp != nil && resp != needIO {
		r.queries.add(kindOf(info), resp.Rcode)
	}
}

// probeKey marks the learning probe's context (answers.go): the cache
// does not count the probe's lookups.
type probeKey struct{}

func isProbe(ctx context.Context) bool {
	v, _ := ctx.Value(probeKey{}).(bool)
	return v
}

// cacheCounters are the management-domain cache's lookups.
type cacheCounters struct {
	hits, stale, misses atomic.Uint64
}

// Stats is a snapshot of the resolver's counters, for metrics.
type Stats struct {
	// Queries counts client queries by the handler that answered
	// (mgmt-cache, local-zone, search-domain, match-group, primary,
	// original, server, none, other) and rcode (NOERROR, NXDOMAIN, ...).
	// Only non-zero pairs are listed.
	Queries []QueryCount
	// The management-domain cache: answered from a fresh entry, from a
	// stale one (a refresh runs in the background), or not in the cache
	// (looked up on demand).
	CacheHits, CacheStale, CacheMisses uint64
	// Upstreams are the answers and failures per upstream server (groups,
	// original nameservers, bypass), sorted by server.
	Upstreams []UpstreamCount
	// Dropped counts queries dropped because too many slow-path queries
	// were in flight.
	Dropped uint64
}

// QueryCount is one (handler, rcode) pair of Stats.Queries.
type QueryCount struct {
	Handler, Rcode string
	N              uint64
}

// UpstreamCount is one upstream server's exchanges.
type UpstreamCount struct {
	Server       string
	OK, Failures uint64
}

// Stats returns the counters. Safe to call at any time.
func (r *Resolver) Stats() Stats {
	var st Stats
	for k := range r.queries.n {
		for slot := range r.queries.n[k] {
			if n := r.queries.n[k][slot].Load(); n > 0 {
				st.Queries = append(st.Queries, QueryCount{Handler: kindNames[k], Rcode: rcodeName(slot), N: n})
			}
		}
	}
	st.CacheHits, st.CacheStale, st.CacheMisses = r.cache.ctr.hits.Load(), r.cache.ctr.stale.Load(), r.cache.ctr.misses.Load()
	st.Dropped = uint64(r.slowDropped.Load())
	r.health.mu.Lock()
	for sv, h := range r.health.m {
		st.Upstreams = append(st.Upstreams, UpstreamCount{Server: sv.String(), OK: h.ok, Failures: h.fail})
	}
	r.health.mu.Unlock()
	sort.Slice(st.Upstreams, func(i, j int) bool { return st.Upstreams[i].Server < st.Upstreams[j].Server })
	return st
}
