package engine

import (
	"fmt"
	"net"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// underlayNet is the interface list the ICE mux gathers host candidates
// from, without the overlay TUN: the mux ignores the ICE agents' interface
// and IP filters, and a host candidate on the overlay address would be
// offered to peers (who drop it) and shown as the local candidate.
// Loopback interfaces are hidden too unless loopback is wanted (the mux,
// unlike the agent, would offer 127.0.0.1 host candidates).
type underlayNet struct {
	*stdnet.Net
	skip     string
	loopback bool
}

func newUnderlayNet(overlayIface string, loopback bool) (*underlayNet, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	return &underlayNet{Net: n, skip: overlayIface, loopback: loopback}, nil
}

// Interfaces returns the interfaces except the overlay one (and loopback).
func (n *underlayNet) Interfaces() ([]*transport.Interface, error) {
	all, err := n.Net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]*transport.Interface, 0, len(all))
	for _, ifc := range all {
		if ifc.Name != n.skip && (n.loopback || ifc.Flags&net.FlagLoopback == 0) {
			out = append(out, ifc)
		}
	}
	return out, nil
}
