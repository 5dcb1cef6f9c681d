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
// # Roaming
//
// The device disables wireguard-go's endpoint roaming for every peer that has
// an endpoint (see (*Device).SetEndpoint): the engine, not the source address
// of the last authenticated packet, decides the path.
//
// # Who may import it
//
// client/engine and client/peer (and tests/benchmarks). It imports only
// client/netx and internal packages from this module.
//
// # Threading
//
// Bind: wireguard-go calls Open/Close/Send/ParseEndpoint and runs each
// ReceiveFunc on its own goroutine; DeliverRelay, SetRelay, SetBlockUDP,
// ICEConn and Stats may be called from any goroutine at any time. Device:
// all methods are safe for concurrent use; Close is idempotent.
package wg
