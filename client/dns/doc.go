// Package dns is the agent's DNS resolver (docs/dns.md): a miekg/dns server on
// the overlay address (TUN mode) or a loopback address (netstack mode) that
// answers through a chain of handlers by priority:
//
//	150  management-domain cache  exact control-plane names; subdomains of relay pool roots
//	 75  local zone               peers <label>.<domain>, custom zones, overlay PTR, search domain
//	 50  nameserver groups        their match domains (most specific first)
//	  1  primary groups           "."
//	-100 original nameservers     "."
//
// A handler answers or passes to the next matching one; when nobody
// answers, the client gets SERVFAIL. The management-domain cache keeps the
// agent's own control plane resolvable in every overlay state: it resolves
// through a bypass resolver that sends queries to the host's original
// nameservers over control-plane (marked) sockets, serves stale entries
// while refreshing them in the background, and never depends on the
// overlay. The host configuration (resolv.conf and friends) lives in the
// subpackage host, not here.
//
// # Importers
//
// client/engine builds a Resolver from the agent's config, calls Apply with
// Settings computed from each network map and ApplyServerDomains on
// server-config updates, uses LookupHost for its own dials, and exposes
// Query and Status to cmd/petrel (`petrel dns query|status`) through the
// daemon, and Stats (lock-free counters, metrics.go) to the daemon's
// metrics. Nothing else should import it. The package does no I/O it is not
// handed except binding its listeners: sockets to upstreams come from
// Config.Dial / Config.GroupDial, time from Config.Clock.
//
// # Goroutines and threading contract
//
//   - Start starts, per listen address, one UDP reader goroutine and
//     miekg's TCP server, which runs one goroutine per TCP connection. A
//     reader reads and writes datagrams in batches (recvmmsg/sendmmsg on
//     Linux), answers what the chain can answer from memory (local zone,
//     cache hits, errors) inline, replaying repeats from its own table of
//     pre-encoded answers (answers.go), and hands a query that needs I/O
//     (nameserver groups, a cache miss, a CNAME out of the local zone) to
//     a goroutine tracked like the cache lookups, at most 1024 at a time
//     (udp.go; see inlineSafe in chain.go for how the chain tells). A
//     listen address that is unspecified (0.0.0.0, ::) is served by
//     miekg's UDP server instead, which answers from the address each
//     query reached.
//   - The cache runs each lookup (first resolution of a new name, a miss,
//     a stale refresh, an on-demand pool subdomain) on a goroutine tracked
//     by the Resolver; at most one per name and type at a time.
//   - Close stops the listeners (closing the UDP sockets unblocks the
//     readers), cancels the background lookups and slow-path queries and
//     waits for every goroutine above. It is idempotent; Start after Close fails.
//   - Apply, ApplyServerDomains, LookupHost, Query, Status and Addrs are
//     safe to call from any goroutine at any time, also before Start.
//     Apply compiles an immutable state (chain, local zone, groups) and
//     swaps it through an atomic pointer: queries never take a lock on it
//     and a query in flight finishes on the state it started with. The
//     cache and the upstream health table outlive Apply and are guarded by
//     their own mutexes, never held across network I/O.
package dns
