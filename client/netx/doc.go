// Package netx creates the agent's control-plane sockets: management, signal,
// relay, STUN/ICE, WireGuard's own UDP socket and the DNS bypass resolver.
//
// On Linux every socket it creates carries SO_MARK = Mark, so the policy
// routing rules installed by the route manager (pref RulePrefSuppress:
// "lookup main suppress_prefixlength 0"; pref RulePrefMark:
// "not fwmark Mark lookup Table") keep these sockets on the underlay whatever
// routes the overlay installs in Table. Setting the mark needs CAP_NET_ADMIN;
// without it (netstack mode as an unprivileged user) sockets are created
// unmarked and the condition is logged once per constructor at debug level,
// which is harmless because netstack mode installs no routes.
//
// Any agent package may import netx. Every function is safe for concurrent use;
// the returned *net.Dialer and *net.ListenConfig values may be shared by many
// goroutines.
package netx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
)

// Policy-routing constants. They are defined here, and only here, so the
// socket mark and the rules that test it can never disagree.
const (
	// Mark is the SO_MARK value set on control-plane sockets.
	Mark = 0x7120
	// Table is the routing table that holds the overlay routes.
	Table = 7120
	// RulePrefSuppress is the preference of the rule
	// "lookup main suppress_prefixlength 0".
	RulePrefSuppress = 7100
	// RulePrefMark is the preference of the rule "not fwmark Mark lookup Table".
	RulePrefMark = 7110
)

// ErrMarkUnsupported is returned by SetMark and GetMark on platforms without SO_MARK.
var ErrMarkUnsupported = errors.New("socket marks unsupported on this platform")

// Dialer returns a dialer whose sockets carry Mark (see package doc).
// Use its DialContext method.
func Dialer(log *slog.Logger) *net.Dialer {
	return &net.Dialer{Control: markControl(logger(log), Mark)}
}

// ListenConfig returns a listen configuration whose sockets carry Mark.
func ListenConfig(log *slog.Logger) *net.ListenConfig {
	return &net.ListenConfig{Control: markControl(logger(log), Mark)}
}

// ListenUDP opens a marked UDP socket. network is "udp", "udp4" or "udp6";
// laddr is "host:port" (port 0 picks a free port).
func ListenUDP(ctx context.Context, log *slog.Logger, network, laddr string) (*net.UDPConn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("listen udp: unsupported network %q", network)
	}
	pc, err := ListenConfig(log).ListenPacket(ctx, network, laddr)
	if err != nil {
		return nil, fmt.Errorf("listen udp: %w", err)
	}
	return pc.(*net.UDPConn), nil
}

func logger(log *slog.Logger) *slog.Logger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return log.With("component", "netx")
}
