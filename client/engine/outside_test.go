package engine

import (
	"net/netip"
	"testing"

	"petrel/client/route"
	"petrel/proto/managementpb"
)

// The SOCKS5 proxy dials from the host only what no overlay address,
// routed network or exit node covers, never host-local addresses, and
// nothing while a saved kill switch holds before the first map.
func TestOutsideOverlay(t *testing.T) {
	pfx := netip.MustParsePrefix
	addr := netip.MustParseAddr
	e := &Engine{self: &managementpb.PeerConfig{Address: "100.64.0.5/16"}}
	e.initRouting()
	check := func(what string, dst string, want bool) {
		t.Helper()
		if got := e.outsideOverlay(addr(dst)); got != want {
			t.Errorf("%s: outsideOverlay(%s) = %v, want %v", what, dst, got, want)
		}
	}
	e.rt.planned = true
	check("internet, no exit node", "198.51.100.7", true)
	for _, local := range []string{"127.0.0.1", "::1", "0.0.0.0", "169.254.169.254", "224.0.0.1", "fe80::1"} {
		check("host-local", local, false)
	}
	check("overlay", "100.64.3.4", false)
	e.rt.plan = route.Plan{Allowed: map[string][]netip.Prefix{"r1": {pfx("10.20.0.0/24")}}}
	check("routed network", "10.20.0.9", false)
	check("outside the routed network", "10.21.0.9", true)
	e.rt.plan.Exit = route.ExitStatus{Peer: "x1", Active: true}
	check("exit node in use", "198.51.100.7", false)
	e.rt.plan.Exit = route.ExitStatus{Peer: "x1", KillSwitch: true}
	check("kill switch holds for an unavailable exit node", "198.51.100.7", false)

	e.rt.plan, e.rt.planned = route.Plan{}, false
	e.rt.prefs = route.ExitPrefs{Peer: "x1", KillSwitch: true}
	check("saved kill switch before the first map", "198.51.100.7", false)
	e.rt.prefs.Off = true
	check("exit node off", "198.51.100.7", true)
}
