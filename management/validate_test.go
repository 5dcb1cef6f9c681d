package management

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"petrel/management/internal/mgmttest"
	"petrel/management/model"
)

// TestCheckRouteNetwork is the table of route networks the service accepts
// (with host bits cleared) and refuses.
func TestCheckRouteNetwork(t *testing.T) {
	const (
		overlay   = "overlaps the overlay range 100.64.0.0/10"
		exit      = "an exit node is 0.0.0.0/0 or ::/0"
		loopback  = "overlaps the loopback"
		linkLocal = "overlaps the link-local range"
		multicast = "overlaps the multicast range"
		mapped    = "overlaps the IPv4-mapped IPv6 range"
	)
	inOverlay := &model.Account{Network: netip.MustParsePrefix("100.64.0.0/16")}
	cases := []struct {
		in, want, err string // want: the stored network when accepted
	}{
		{in: "10.20.0.0/24", want: "10.20.0.0/24"},
		{in: "10.20.0.1/24", want: "10.20.0.0/24"}, // host bits cleared
		{in: "192.168.1.7/32", want: "192.168.1.7/32"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "::/0", want: "::/0"},
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "100.63.255.0/24", want: "100.63.255.0/24"}, // just below 100.64.0.0/10
		{in: "100.128.0.0/24", want: "100.128.0.0/24"},   // just above
		{in: "172.16.0.0/12", want: "172.16.0.0/12"},
		{in: "128.0.0.0/1", err: linkLocal},  // contains 169.254.0.0/16
		{in: "fec0::/10", want: "fec0::/10"}, // next to link-local

		{in: "100.64.0.0/16", err: overlay}, // the account's own /16
		{in: "100.64.0.0/10", err: overlay},
		{in: "100.64.5.0/24", err: overlay}, // inside the account's /16
		{in: "100.64.0.7/32", err: overlay}, // one peer
		{in: "100.65.0.0/16", err: overlay}, // another account's /16
		{in: "100.127.255.255/32", err: overlay},
		{in: "100.0.0.0/8", err: overlay},   // contains the overlay
		{in: "0.0.0.0/1", err: overlay},     // contains it too
		{in: "100.64.0.1/16", err: overlay}, // host bits cleared first

		{in: "10.0.0.0/0", err: exit},
		{in: "100.64.0.0/0", err: exit},
		{in: "2001:db8::/0", err: exit},
		{in: "::ffff:0.0.0.0/0", err: exit},

		{in: "127.0.0.0/8", err: loopback},
		{in: "127.0.0.1/32", err: loopback},
		{in: "::1/128", err: loopback},
		{in: "::/127", err: loopback}, // holds ::1
		{in: "169.254.0.0/16", err: linkLocal},
		{in: "169.254.169.254/32", err: linkLocal},
		{in: "fe80::/10", err: linkLocal},
		{in: "fe80::/64", err: linkLocal},
		{in: "224.0.0.0/4", err: multicast},
		{in: "239.1.2.0/24", err: multicast},
		{in: "ff02::/16", err: multicast},
		{in: "::ffff:10.0.0.0/104", err: mapped},
		{in: "::ffff:0:0/96", err: mapped},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := checkRouteNetwork(inOverlay, netip.MustParsePrefix(tc.in))
			if tc.err == "" {
				if err != nil || got.String() != tc.want {
					t.Fatalf("checkRouteNetwork(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
				}
				return
			}
			wantKind(t, err, KindInvalid, tc.in)
			if !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("checkRouteNetwork(%s): error %q does not mention %q", tc.in, err, tc.err)
			}
		})
	}
	if _, err := checkRouteNetwork(inOverlay, netip.Prefix{}); err == nil || !strings.Contains(err.Error(), "valid prefix") {
		t.Fatalf("zero prefix: %v", err)
	}
	// The account's network is checked on its own (either contains the other).
	other := &model.Account{Network: netip.MustParsePrefix("172.30.0.0/16")}
	for _, in := range []string{"172.30.0.0/16", "172.30.4.0/24", "172.0.0.0/8"} {
		_, err := checkRouteNetwork(other, netip.MustParsePrefix(in))
		if err == nil || !strings.Contains(err.Error(), "overlaps the account network 172.30.0.0/16") {
			t.Fatalf("%s in account 172.30.0.0/16: %v", in, err)
		}
	}
	if _, err := checkRouteNetwork(other, netip.MustParsePrefix("172.31.0.0/16")); err != nil {
		t.Fatalf("172.31.0.0/16 in account 172.30.0.0/16: %v", err)
	}
}

// TestPutRouteRefusesReservedNetworks: through the service (every entry
// point), a new route or an update with a refused network is Invalid and
// changes nothing.
func TestPutRouteRefusesReservedNetworks(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	_, plain := mustSetupKey(t, s, acct, SetupKeyInput{Reusable: true})
	r1, err := login(s, ctx, mgmttest.NewKey(t), plain, "router")
	if err != nil {
		t.Fatal(err)
	}
	peerID := r1.GetPeerConfig().GetPeerId()
	snap, _ := s.Snapshot(acct)
	if snap.Network.String() != "100.64.0.0/16" {
		t.Fatalf("account network %s", snap.Network)
	}
	all := allGroup(snap)
	mk := func(id, network string) *model.Route {
		return &model.Route{ID: id, Network: netip.MustParsePrefix(network), Peer: peerID, Groups: []string{all.ID}, Enabled: true}
	}
	stored, err := s.Put(ctx, acct, mk("", "10.20.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	rid := stored.ObjectID()
	for _, network := range []string{"100.64.0.0/16", "100.64.0.0/24", "100.96.0.0/12", "100.0.0.0/8",
		"10.0.0.0/0", "127.0.0.0/8", "169.254.0.0/16", "fe80::/10", "224.0.0.0/4", "::ffff:10.0.0.0/104"} {
		for _, id := range []string{"", rid} { // create, then update the existing route
			before, _ := s.Snapshot(acct)
			_, err := s.Put(ctx, acct, mk(id, network))
			wantKind(t, err, KindInvalid, network)
			after, _ := s.Snapshot(acct)
			if len(after.Routes) != 1 || !reflect.DeepEqual(after.Routes, before.Routes) || after.Routes[rid].Network.String() != "10.20.0.0/24" {
				t.Fatalf("refused Put(%q, %s) changed the routes: %+v", id, network, after.Routes)
			}
		}
	}
	// A valid update of the same route is accepted.
	if _, err := s.Put(ctx, acct, mk(rid, "10.30.0.0/16")); err != nil {
		t.Fatalf("valid update refused: %v", err)
	}
}
