// Package wg is the agent's WireGuard data plane: a wireguard-go device over
// a kernel TUN (root) or the gVisor netstack (no root), and Bind, the
// conn.Bind that carries WireGuard over one UDP socket shared with ICE, plus
// relay endpoints.
//
// # Paths
//
// A peer's endpoint is either direct ("ip:port", *UDPEndpoint) or relayed
// ("relay:<base64 key>@<instance URL>", *RelayEndpoint). The engine switches
// a peer's path with (*Device).SetEndpoint; the tunnel, its sessions and its
// keys are untouched. Incoming datagrams on the socket that are STUN (see
// IsSTUN) go to the facade returned by (*Bind).ICEConn, which the agent hands
// to pion/ice's UDPMuxDefault: the ICE pair that wins is therefore exactly
// the 5-tuple WireGuard then uses. Packets received from relays are injected
// with (*Bind).DeliverRelay.
//
// # Offloads
//
// On Linux the bind sends with sendmmsg and UDP GSO (runs of equal-size
// packets of one Send become one segmented datagram) and receives with
// recvmmsg and UDP GRO (coalesced datagrams are split before the STUN/
// WireGuard demux), falling back to plain datagrams where the kernel or the
// route refuses; kernel TUN mode uses wireguard-go's TUN offloads. See
// docs/dataplane.md.
//
// # Roaming
//
// The device disables wireguard-go's endpoint roaming for every peer that has
// an endpoint (see (*Device).SetEndpoint): the engine, not the source address
// of the last authenticated packet, decides the path.
//
// # Who may import it
//
// client/engine and client/peer (and tests/benchmarks); client/daemon for
// DeleteInterface (crash cleanup) and cmd/petrel for DefaultInterfaceName.
// It imports only client/netx and internal packages from this module.
//
// # Platforms
//
// Kernel TUN mode is set up over netlink on Linux (tun_linux.go) and with
// wireguard-go's TUN plus ifconfig/route (macOS, FreeBSD) or netsh
// (Windows, Wintun) elsewhere (tun.go, tun_default.go); netstack mode is
// the same everywhere. docs/platforms.md has what is tested where.
//
// # Threading
//
// Bind: wireguard-go calls Open/Close/Send/ParseEndpoint and runs each
// ReceiveFunc on its own goroutine; DeliverRelay, SetRelay, SetBlockUDP,
// ICEConn and Stats may be called from any goroutine at any time. Device:
// all methods are safe for concurrent use; Close is idempotent.
package wg
