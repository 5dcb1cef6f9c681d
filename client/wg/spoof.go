package wg

import (
	"encoding/base64"
	"fmt"
	"sync/atomic"

	"petrel/internal/keys"
)

// Spoofed packets. wireguard-go drops a decrypted packet whose inner source
// address is outside the sending peer's allowed IPs and says so only in a
// verbose log line ("IPv4 packet with disallowed source address from
// peer(AbCd…WxYz)"). The device's logger counts those lines per peer, so
// the firewall's status can show them.

// spoofFormatSuffix ends wireguard-go's format string for such drops.
const spoofFormatSuffix = "packet with disallowed source address from %v"

func (d *Device) countSpoofed(peer any) {
	name := fmt.Sprint(peer)
	c, ok := d.spoofed.Load(name)
	if !ok {
		c, _ = d.spoofed.LoadOrStore(name, new(atomic.Uint64))
	}
	c.(*atomic.Uint64).Add(1)
}

// Spoofed returns how many packets from pub were dropped because their
// inner source address was not one of pub's allowed IPs.
func (d *Device) Spoofed(pub keys.Public) uint64 {
	if c, ok := d.spoofed.Load(wgPeerName(pub)); ok {
		return c.(*atomic.Uint64).Load()
	}
	return 0
}

// wgPeerName is wireguard-go's abbreviated peer name for pub.
func wgPeerName(pub keys.Public) string {
	b := base64.StdEncoding.EncodeToString(pub[:])
	return "peer(" + b[0:4] + "…" + b[39:43] + ")"
}
