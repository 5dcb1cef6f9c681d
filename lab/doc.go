// Package lab builds throw-away network labs out of Linux network
// namespaces for Petrel's lab tests, demos and benchmark rigs: hosts behind
// NAT routers (endpoint-independent or symmetric mapping), an "internet"
// bridge that carries the control plane (petrel-server, two relay instances
// under one pool domain, a lab DNS server), and impairments (loss, rate,
// delay).
//
// Who may import it: tests (build tag `lab`), lab/cmd/lab and bench rigs.
// Production code must never import it. It needs root (CAP_SYS_ADMIN and
// CAP_NET_ADMIN) and the `ip`, `nft`, `tc` and `conntrack` tools
// (`iptables` for Host.SetDelay).
//
// Naming and cleanup: every namespace carries a run-unique prefix
// ("pl" + 4 hex digits); interfaces are created directly inside the lab's
// namespaces, so nothing appears in the machine's own namespace, and
// /etc/netns/<ns>/resolv.conf points each host at the lab DNS server so
// nothing run with Host.Run or Host.Start can touch the real
// /etc/resolv.conf. Before a resource is created it is recorded in a journal
// (/run/petrel-lab/<prefix>.json by default); Close removes everything and
// CleanupStale removes what runs whose owner process died left behind.
//
// Sockets in a namespace: Host.ListenUDP, Host.ListenTCP, Host.DialContext
// and Host.Do run on a goroutine locked to an OS thread that has joined the
// namespace; a socket stays in the namespace it was created in, so it can be
// used from any goroutine afterwards. The lab DNS server is served this way
// inside its own namespace on the bridge (no subprocess).
//
// Threading: a Lab and its Hosts are safe for concurrent use; topology
// changes are serialised by the Lab. Close is idempotent.
package lab
