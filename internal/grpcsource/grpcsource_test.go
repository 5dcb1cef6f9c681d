package grpcsource

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"google.golang.org/grpc/peer"
)

type strAddr string

func (a strAddr) Network() string { return "test" }
func (a strAddr) String() string  { return string(a) }

func TestAddr(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}, "192.0.2.1"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 1}, "192.0.2.1"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1}, "2001:db8::1"},
		{strAddr("[2001:db8::2]:5"), "2001:db8::2"},
		{strAddr("pipe"), "invalid IP"},
	} {
		got := Addr(peer.NewContext(ctx, &peer.Peer{Addr: tc.addr}))
		if got.String() != tc.want {
			t.Errorf("%v: %v, want %s", tc.addr, got, tc.want)
		}
	}
	if Addr(ctx) != (netip.Addr{}) {
		t.Error("no peer: want the zero Addr")
	}
}
