package engine

import (
	"net/netip"

	"petrel/internal/keys"
)

// dropRelay is a relay sender that loses every packet.
type dropRelay struct{}

func (dropRelay) Send(keys.Public, string, []byte) error { return nil }

// Blackhole makes the agent vanish for its peers without telling anyone:
// every WireGuard packet, direct or relayed, in or out, is lost, while
// management, signal and the relay connection stay up (a frozen process or
// a cut path, as its peers see it). on=false restores the data plane.
func (e *Engine) Blackhole(on bool) {
	if !on {
		e.bind.SetBlockUDP(nil)
		e.bind.SetRelay(e.relay)
		e.relay.SetReceiver(e.bind.DeliverRelay)
		return
	}
	e.relay.SetReceiver(func(keys.Public, string, []byte) {})
	e.bind.SetRelay(dropRelay{})
	e.bind.SetBlockUDP(func(netip.AddrPort) bool { return true })
}
