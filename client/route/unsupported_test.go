package route

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"petrel/internal/feature"
)

// A platform without host routing reports, per feature, exactly what the
// config asks of it, and nothing for what it does not ask.
func TestUnsupportedParts(t *testing.T) {
	mp := netip.MustParsePrefix
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // "feature: need"
	}{
		{"netstack mode", Config{Routes: []netip.Prefix{mp("10.0.0.0/24")}, Exit: Exit{Active: true}}, nil},
		{"nothing asked", Config{Interface: "utun4", Overlay: mp("100.64.0.0/16")}, nil},
		{"kill switch without an active exit node", Config{Interface: "utun4", Exit: Exit{KillSwitch: true}}, nil},
		{"routes", Config{Interface: "utun4", Routes: []netip.Prefix{mp("10.0.0.0/24"), mp("10.1.0.0/24")}},
			[]string{"routes: 2 routes to install"}},
		{"exit node only", Config{Interface: "utun4", Routes: []netip.Prefix{mp("0.0.0.0/0"), mp("::/0")}, Exit: Exit{Active: true}},
			[]string{"exit-node: an exit node is selected"}},
		{"routing peer", Config{Interface: "petrel0", Serve: []Serve{{Network: mp("192.168.1.0/24")}}},
			[]string{"routing-peer: this agent serves 1 network"}},
		{"all three", Config{Interface: "petrel0", Routes: []netip.Prefix{mp("10.0.0.0/24"), mp("0.0.0.0/0")},
			Exit: Exit{Active: true}, Serve: []Serve{{Network: mp("192.168.1.0/24")}, {Network: mp("192.168.2.0/24")}}},
			[]string{"routes: 1 route to install", "exit-node: an exit node is selected", "routing-peer: this agent serves 2 networks"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := unsupported(tc.cfg)
			us, rest := feature.Split(err)
			if rest != nil {
				t.Fatalf("non-platform error: %v", rest)
			}
			var got []string
			for _, u := range us {
				got = append(got, string(u.Feature)+": "+u.Need)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if (err != nil) != errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("error %v is not errors.ErrUnsupported", err)
			}
		})
	}
}
