package route

import (
	"net/netip"
	"strings"
	"testing"
)

func TestReserved(t *testing.T) {
	tests := []struct {
		p    string
		want string // substring of the reason; "" = not reserved
	}{
		{"0.0.0.0/0", ""},
		{"::/0", ""},
		{"10.0.0.0/8", ""},
		{"192.168.1.0/24", ""},
		{"100.64.0.0/10", ""}, // the overlay is the planner's own check
		{"2001:db8::/32", ""},
		{"223.255.255.0/24", ""},
		{"1.0.0.0/8", ""},
		{"127.0.0.0/8", "loopback"},
		{"127.0.0.1/32", "loopback"},
		{"126.0.0.0/7", "loopback"}, // contains 127/8
		{"::1/128", "loopback"},
		{"169.254.169.254/32", "link-local"},
		{"fe80::/64", "link-local"},
		{"224.0.0.0/4", "multicast"},
		{"239.1.2.3/32", "multicast"},
		{"ff02::1/128", "multicast"},
		{"ff00::/8", "multicast"},
		{"0.0.0.0/8", "this network"},
		{"0.1.2.3/32", "this network"},
		{"240.0.0.0/4", "reserved"},
		{"255.255.255.255/32", "reserved"},
		{"128.0.0.0/1", "overlaps"}, // contains 169.254/16, 224/4 and 240/4
		{"::ffff:0:0/96", "IPv4-mapped"},
		{"::ffff:10.0.0.0/104", "IPv4-mapped"},
	}
	for _, tc := range tests {
		got := Reserved(netip.MustParsePrefix(tc.p))
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("Reserved(%s) = %q, want %q", tc.p, got, tc.want)
		}
	}
	if Reserved(netip.Prefix{}) == "" {
		t.Error("Reserved(invalid prefix) = \"\"")
	}
}
