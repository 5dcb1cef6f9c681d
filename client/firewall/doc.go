// Package firewall is the agent's userspace stateful packet filter. It sits
// in the TUN/netstack path as client/wg's PacketFilter: Inbound sees every
// packet decrypted from a peer before the host does, Outbound every packet
// from the host before it is encrypted.
//
// # Who may import it
//
// client/engine, which converts the network map's FirewallRules and
// PeerSets (and its own address and routing duties) into a Config and calls
// Apply on every map change. The package imports nothing from this module.
//
// # Semantics
//
// Default deny, both ways. A New filter drops everything until the first
// Apply, and after it a packet that opens a flow passes only if a rule
// allows it:
//   - Outbound (this agent → remote): an Out rule whose Peers contain the
//     destination, with matching protocol and destination port. The source
//     address is not checked.
//   - Inbound (remote → this agent): the destination is one of Config.Self
//     and an In rule's Peers contain the source, with matching protocol and
//     destination port.
//   - Inbound, forwarded (remote → a network this agent routes): the
//     destination is inside Config.Routed and an In rule matches the source,
//     protocol and destination port. Anything else inbound is dropped.
//
// Drop wins over accept when both match; no matching rule denies. Ports
// are destination ports of the opening packet; a rule with Ports matches
// only TCP/UDP, ICMP rules ignore ports, and packets without ports (other
// protocols, IPv6 packets whose first next-header is not TCP/UDP/ICMPv6,
// non-first IPv4 fragments) match only Proto=All rules without Ports.
//
// Stateful: an allowed opening packet creates a conntrack entry (TCP unless
// RST, UDP, ICMP echo request, other protocols) keyed by the 5-tuple
// oriented by side (remote, local, ports; ICMP echo: identifier), so the
// other direction's packets pass. ICMP errors (unreachable, too big, time
// exceeded, parameter problem) pass when the packet they quote belongs to a
// tracked flow. Idle timeouts: TCP 30 s until the other side answers, 2 h
// established, 2 min after FIN/RST; UDP and others 30 s unanswered, 2 min
// answered; ICMP echo 30 s. Entries expire lazily on lookup and in a
// periodic sweep. The table holds at most 65,536 entries and 4,096 per
// remote address (WithLimits); past a limit that remote's new flows are
// dropped and counted as its drops, other remotes are unaffected (until
// the total is reached).
//
// Rule changes: Apply compiles the Config into an immutable table and
// swaps an atomic.Pointer, so each packet is judged by one rule set. Every
// conntrack entry records the table generation it was checked against; the
// first packet of a flow after a swap re-checks the flow as if it were
// opened again in its original direction, and a flow no longer allowed is
// removed and that packet judged as a new one (usually dropped).
//
// Fragments: non-first fragments carry no ports and are not reassembled;
// they pass only if a Proto=All rule without ports allows the pair in the
// fragment's direction. First fragments are filtered like whole packets.
// Malformed or truncated headers are dropped.
//
// Spoofed inner sources (outside the sending peer's allowed IPs) are
// dropped by wireguard-go before Inbound; this package does not check them.
//
// # Goroutines and threading
//
// New starts one goroutine that sweeps expired conntrack entries
// (WithGCInterval); Close stops it and waits. Inbound, Outbound, Stats and
// Trace are safe for concurrent use and take no lock on the rule table;
// conntrack is 256 mutex-guarded shards chosen by remote address (a
// remote's flows and its per-remote count share one shard). Apply calls
// are serialised with each other only. Inbound/Outbound never retain the
// packet.
package firewall
