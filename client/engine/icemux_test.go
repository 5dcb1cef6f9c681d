package engine

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// After the NAT's public address changes, the ICE mux learns the new
// server-reflexive address once srflxCacheTTL has passed, not after the
// mux's 25 s default (a retry would offer the dead address until then).
func TestICEMuxRelearnsChangedSrflx(t *testing.T) {
	srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var mapped atomic.Pointer[net.UDPAddr]
	mapped.Store(&net.UDPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 40001})
	go fakeSTUN(srv, &mapped)

	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := newICEMux(conn, nil)
	defer mux.Close()

	get := func() string {
		t.Helper()
		a, err := mux.GetXORMappedAddr(srv.LocalAddr(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return a.String()
	}
	first := get()
	mapped.Store(&net.UDPAddr{IP: net.IPv4(198, 51, 100, 2), Port: 40002}) // the NAT renumbered
	time.Sleep(srflxCacheTTL + 200*time.Millisecond)
	if second := get(); second == first {
		t.Fatalf("server-reflexive address still %s after the mapping changed", first)
	}
}

// fakeSTUN answers binding requests with the address in mapped, like a
// STUN server behind which the client's NAT mapping can change.
func fakeSTUN(pc net.PacketConn, mapped *atomic.Pointer[net.UDPAddr]) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		req := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if req.Decode() != nil || req.Type != stun.BindingRequest {
			continue
		}
		m := mapped.Load()
		resp, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: m.IP, Port: m.Port}, stun.Fingerprint)
		if err != nil {
			continue
		}
		_, _ = pc.WriteTo(resp.Raw, from)
	}
}
