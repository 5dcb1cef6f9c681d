package engine

import (
	"net"
	"testing"
)

func TestUnderlayNetHidesOverlayAndLoopback(t *testing.T) {
	ifs, err := net.Interfaces()
	if err != nil || len(ifs) == 0 {
		t.Skipf("no interfaces: %v", err)
	}
	var skip string
	loops := 0
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			loops++
		} else if skip == "" {
			skip = ifc.Name
		}
	}
	if skip == "" {
		t.Skip("only loopback interfaces")
	}
	for _, tc := range []struct {
		loopback bool
		want     int
	}{{false, len(ifs) - 1 - loops}, {true, len(ifs) - 1}} {
		n, err := newUnderlayNet(skip, tc.loopback)
		if err != nil {
			t.Fatal(err)
		}
		got, err := n.Interfaces()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want {
			t.Errorf("loopback=%v: got %d interfaces, want %d", tc.loopback, len(got), tc.want)
		}
		for _, ifc := range got {
			if ifc.Name == skip || (!tc.loopback && ifc.Flags&net.FlagLoopback != 0) {
				t.Errorf("loopback=%v: %s not hidden", tc.loopback, ifc.Name)
			}
		}
	}
}
