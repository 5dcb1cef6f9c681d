package wg

import (
	"net/netip"
	"slices"
	"testing"
)

func TestAllowedIPsMoveBetweenPeers(t *testing.T) {
	a, _ := newPair(t, false)
	_, k1 := newKey(t)
	_, k2 := newKey(t)
	def := netip.MustParsePrefix("0.0.0.0/0")
	h1, h2 := netip.MustParsePrefix("100.64.0.2/32"), netip.MustParsePrefix("100.64.0.3/32")
	up := func(k [32]byte, ips ...netip.Prefix) {
		if err := a.dev.UpsertPeer(k, ips, "", 0); err != nil {
			t.Fatal(err)
		}
	}
	up(k1, h1, def)
	up(k2, h2)
	up(k1, h1)
	up(k2, h2, def)
	up(k2, h2)
	st, err := a.dev.Stats()
	if err != nil {
		t.Fatal(err)
	}
	for k, s := range st {
		if slices.Contains(s.AllowedIPs, def) {
			t.Fatalf("%x still has the default: %v", k[:4], s.AllowedIPs)
		}
	}
}
