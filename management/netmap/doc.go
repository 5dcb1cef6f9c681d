// Package netmap computes the network maps the management service sends to
// agents, and the deltas between two versions of them.
//
// A Snapshot indexes one immutable version of a model.Account (group →
// members, policy rule → firewall rules, route → routing peers, and one
// shared "view" per distinct group set). Map builds one peer's map in
// O(visible peers); Next derives the snapshot of the next account version
// reusing every index the Change leaves untouched; Deltas computes the
// per-peer deltas, touching only the peers a change can affect.
//
// Semantics (see docs/netmap.md for the full contract):
//   - Visibility is symmetric: P sees Q iff an enabled accept rule has one in
//     its sources and the other in its destinations, or one routes an enabled
//     route distributed to a group of the other. A peer never sees itself.
//   - Peer sets hold the group's members the peer sees, plus the peer
//     itself if it is a member, so a peer that sees the whole group gets the
//     snapshot's shared set (agents ignore their own IP in a set).
//   - Firewall rules: DROP rules first, then ACCEPT; within each, by policy
//     ID, rule position, direction. First match wins on the agent.
//   - Everything is sorted so maps compare with proto.Equal.
//
// WithoutPeerRecords and CompactPeers (derived.go) give the wire form of a
// Sync message for agents that rebuild the peers' DNS records or take
// compact peers (see docs/management.md, decision 14).
//
// Imported by the management service (and by agents for Apply). The package
// is pure: no I/O, no goroutines, no clocks. A Snapshot is immutable after
// Build/Next and safe for concurrent use. Maps returned by Map share
// read-only sub-messages (RemotePeer, PeerSet, FirewallRule, Route,
// SimpleRecord, ...) and some repeated fields with the snapshot and with
// other maps: callers must not mutate them (clone with proto.Clone first). Apply never mutates its inputs.
package netmap
