package peer

import (
	"testing"

	"github.com/pion/ice/v4"
)

func srflx(t *testing.T, raw string) ice.Candidate {
	t.Helper()
	c, err := ice.UnmarshalCandidate(raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNATObserver(t *testing.T) {
	eimA := "candidate:1 1 udp 1694498815 203.0.113.101 40000 typ srflx raddr 192.168.1.2 rport 40000"
	eimB := "candidate:2 1 udp 1694498815 203.0.113.101 40000 typ srflx raddr 192.168.1.2 rport 40000"
	symA := "candidate:3 1 udp 1694498815 203.0.113.102 51000 typ srflx raddr 192.168.2.2 rport 40000"
	symB := "candidate:4 1 udp 1694498815 203.0.113.102 51007 typ srflx raddr 192.168.2.2 rport 40000"
	host := "candidate:5 1 udp 2130706431 192.168.2.2 40000 typ host"
	for _, tc := range []struct {
		name          string
		local, remote []string
		want          bool
	}{
		{"both EIM", []string{eimA, eimB}, []string{eimA}, false},
		{"local symmetric", []string{symA, symB}, []string{eimA}, true},
		{"remote symmetric", []string{eimA}, []string{symA, host, symB}, true},
		{"host candidates do not count", []string{host, eimA}, nil, false},
	} {
		var n natObserver
		for _, r := range tc.local {
			n.observe(srflx(t, r), false)
		}
		for _, r := range tc.remote {
			n.observe(srflx(t, r), true)
		}
		if got := n.symmetric(); got != tc.want {
			t.Errorf("%s: symmetric = %v, want %v", tc.name, got, tc.want)
		}
		n.reset()
		if n.symmetric() {
			t.Errorf("%s: reset kept the verdict", tc.name)
		}
	}
}
