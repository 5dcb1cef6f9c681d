// Package e2e drives real petrel-server and petrel (agent) processes inside
// a network lab (package lab): a Cluster starts the control plane (one
// management+signal+STUN server and two relay instances under the pool
// root relay.lab.test), Agents run `petrel up --foreground` in TUN mode on
// hosts behind NAT routers, and helpers read `petrel status --json`, ping
// through the overlay with the system ping and move bytes through the
// tunnel over TCP.
//
// The end-to-end scenarios live in this package's tests (build tag `lab`,
// root; scripts/lab.sh runs them); bench/connect reuses the harness.
//
// Who may import it: lab tests and bench rigs only, never production code.
// It needs root, the lab's tools, and `ping` (iputils-ping).
//
// Threading: a Cluster and its Agents are safe for concurrent use once
// built; starting and stopping processes is serialised by the caller
// (tests do it from the test goroutine).
package e2e
