// Package route is the host side of routes and exit nodes: it converges the
// host's policy routing, overlay routes, nftables tables and sysctls to a
// Config computed by the planner (plan.go, select.go in this package) from
// the network map and the HA choice.
//
// Importers: client/engine (New, Apply on every map or HA change, Close on
// shutdown, Repairs for status, HostNetworks for the planner) and
// client/daemon (Undoers, to undo a crashed agent's journal at start).
//
// On Linux, for a Config with an Interface (a kernel TUN; an empty Interface
// is netstack mode and nothing on the host is touched), Apply installs:
//   - the rules "pref netx.RulePrefSuppress lookup main suppress_prefixlength 0"
//     and "pref netx.RulePrefMark not fwmark netx.Mark lookup netx.Table",
//     per address family that has a route in netx.Table;
//   - one route "dev Interface table netx.Table" per Config.Routes entry,
//     0.0.0.0/0 for an exit node, and "unreachable ::/0" for BlockIPv6;
//   - for an exit node without AllowLAN, "to LAN not fwmark netx.Mark lookup
//     netx.Table" rules at netx.RulePrefSuppress-10 (see wantRules);
//   - nftables tables of family inet: petrel-mark (conntrack mark
//     save/restore, with net.ipv4.conf.all.src_valid_mark=1, so strict
//     rp_filter accepts replies to marked sockets once an overlay default
//     exists; installed whenever IPv4 routes are, because rp_filter may be
//     tightened after Apply), petrel-exit (kill switch) and petrel-fwd
//     (routing peer: forward filter with per-network source sets, and
//     masquerade), each replaced atomically (petrel-mark in its own batch);
//   - net.ipv4.ip_forward (and net.ipv6.conf.all.forwarding for IPv6
//     networks) for a routing peer, only once petrel-fwd is in place. When
//     it was off before us, petrel-fwd also drops forwarded traffic of that
//     family that neither enters nor leaves on Interface (the host must not
//     become a router between its other interfaces); forwarding that was
//     already on is someone else's, and their traffic is left alone.
//
// petrel-mark and src_valid_mark are best effort (only strict rp_filter
// needs them): if they fail, Apply warns once, notes it in Result.Degraded
// and installs routes and rules anyway, retrying at each Apply. The kill
// switch and petrel-fwd are required: their failure fails Apply before any
// route (or forwarding) is installed.
//
// Journal: every change is recorded before it is made, so that Undoers can
// undo it from the entry alone after a crash (kill -9 right after a Record
// included: each undo treats "already gone" as success). Each distinct
// entry is recorded once per Manager, however often a change is retried.
// Kinds:
//   - "route"     (KindRoute): a route in netx.Table; undo deletes it;
//   - "rule"      (KindRule): a policy rule; undo deletes every copy;
//   - "sysctl"    (KindSysctl): a sysctl, its previous value and the value
//     written; undo (and Close) write the previous value back only while
//     the sysctl still holds ours: a value someone else set since stays;
//   - "nft-table" (KindNftTable): an nftables table we own; undo deletes it.
//
// Goroutines: the Manager owns one, the drift checker, started by the first
// Apply that installs something and stopped (and waited for) by Close,
// which marks the Manager closed first, so no Apply can start it again.
// Close deletes routes before rules, and the mark rule before the suppress
// rule, so unmarked traffic never briefly follows the overlay default.
// Every 2 s it lists the rules, the routes of netx.Table and our nftables
// tables, and reinstalls whatever of ours is missing or changed (a route on
// another device, say; for a table: missing, or a chain or set missing or
// extra, or a chain with rules flushed, added or deleted; an in-place edit
// that keeps those counts is not noticed), logging each repair and
// counting it in Repairs. A
// periodic check was chosen over a netlink subscription because it covers
// rules and nftables too (no subscription in the libraries for those) and
// cannot miss events when a socket buffer overflows; 2 s bounds the outage.
// It holds the Manager's mutex, so it never interleaves with Apply or
// Close. Sysctls changed from outside are not repaired. The LAN prefixes
// (AllowLAN and the kill switch) are read at each Apply; the engine calls
// Apply on link changes.
//
// Apply, Close and Repairs may be called from any goroutine. Undoers and
// HostNetworks work in the calling thread's network namespace; the Manager
// itself uses netlink handles, so tests can give it a namespace.
package route
