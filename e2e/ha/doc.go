// Package ha is the multi-process rig of the HA control plane
// (docs/adr-005-ha-control-plane.md): three petrel-server processes on one
// PostgreSQL of its own, behind a round-robin TCP proxy, with hundreds of
// simulated agents (real gRPC Login and Sync, deltas applied and checked)
// and a few real netstack agents. The tests kill an instance with SIGKILL
// and freeze the database with SIGSTOP, and measure how fast the agents
// are back in sync (docs/e2e.md, BENCHMARKS.md "HA control plane").
//
// The tests need PostgreSQL's server binaries (scripts/pg-start.sh starts a
// private cluster; as root it installs them) and skip without them unless
// CI=true.
package ha
