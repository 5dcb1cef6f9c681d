package wg

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	"golang.zx2c4.com/wireguard/conn"
)

func TestIsSTUN(t *testing.T) {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	wgData := make([]byte, 64)
	wgData[0] = 4
	// A WireGuard data packet whose receiver index happens to equal the cookie.
	wgCookie := append([]byte(nil), wgData...)
	copy(wgCookie[4:8], req.Raw[4:8])
	tests := []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"binding request", req.Raw, true},
		{"short", req.Raw[:19], false},
		{"truncated", req.Raw[:len(req.Raw)-4], false},
		{"top bits set", append([]byte{0x80}, req.Raw[1:]...), false},
		{"wireguard data", wgData, false},
		{"wireguard with cookie-like index", wgCookie, false},
		{"empty", nil, false},
	}
	for _, tc := range tests {
		if got := IsSTUN(tc.pkt); got != tc.want {
			t.Errorf("%s: IsSTUN = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBindOpenCloseCycles(t *testing.T) {
	b := NewBind(BindConfig{ListenAddr: netip.MustParseAddr("127.0.0.1")})
	var port uint16
	for i := 0; i < 5; i++ {
		fns, p, err := b.Open(port)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if len(fns) != 2 {
			t.Fatalf("got %d receive funcs", len(fns))
		}
		if port != 0 && p != port {
			t.Fatalf("reopen on %d gave %d", port, p)
		}
		port = p
		if _, _, err := b.Open(port); !errors.Is(err, conn.ErrBindAlreadyOpen) {
			t.Fatalf("double open: %v", err)
		}
		errs := make(chan error, len(fns))
		for _, fn := range fns {
			go func() {
				bufs := [][]byte{make([]byte, 1500)}
				_, err := fn(bufs, make([]int, 1), make([]conn.Endpoint, 1))
				errs <- err
			}()
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		for range fns {
			select {
			case err := <-errs:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("receive after close: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("receive func not unblocked by Close")
			}
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send([][]byte{{1}}, newUDPEndpoint(netip.MustParseAddrPort("127.0.0.1:9"))); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("send on closed bind: %v", err)
	}
}

func TestBindRelayQueueBounded(t *testing.T) {
	b := NewBind(BindConfig{ListenAddr: netip.MustParseAddr("127.0.0.1"), RelayQueue: 4})
	fns, _, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, pub := newKey(t)
	for i := 0; i < 10; i++ {
		b.DeliverRelay(pub, testRelayURL, []byte{byte(i), 1, 2, 3})
	}
	if d := b.Stats().RelayRxDropped; d != 6 {
		t.Fatalf("dropped %d, want 6", d)
	}
	bufs := make([][]byte, 8)
	for i := range bufs {
		bufs[i] = make([]byte, 100)
	}
	eps := make([]conn.Endpoint, 8)
	sizes := make([]int, 8)
	n, err := fns[1](bufs, sizes, eps)
	if err != nil || n != 4 {
		t.Fatalf("relay receive: n=%d err=%v", n, err)
	}
	for i := 0; i < n; i++ {
		re, ok := eps[i].(*RelayEndpoint)
		if !ok || re.Peer() != pub || re.InstanceURL() != testRelayURL || sizes[i] != 4 || bufs[i][0] != byte(i) {
			t.Fatalf("packet %d: ep=%v size=%d first=%d", i, eps[i], sizes[i], bufs[i][0])
		}
	}
}

func TestSTUNDemux(t *testing.T) {
	a, b := newPair(t, true)
	waitPing(t, a, b.ip, 30*time.Second)

	ic := a.bind.ICEConn()
	defer ic.Close()
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if _, err := client.WriteTo(req.Raw, a.bind.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	_ = ic.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 1500)
	n, from, err := ic.ReadFrom(buf)
	if err != nil {
		t.Fatalf("read from ICE conn: %v", err)
	}
	if string(buf[:n]) != string(req.Raw) || udpAddrPort(from) != udpAddrPort(client.LocalAddr()) {
		t.Fatalf("got %d bytes from %v", n, from)
	}
	resp := stun.MustBuild(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: net.IPv4(127, 0, 0, 1), Port: client.LocalAddr().(*net.UDPAddr).Port}, stun.Fingerprint)
	if _, err := ic.WriteTo(resp.Raw, from); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, src, err := client.ReadFrom(buf)
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	if string(buf[:n]) != string(resp.Raw) || udpAddrPort(src) != a.bind.LocalAddr().AddrPort() {
		t.Fatalf("reply %d bytes from %v", n, src)
	}
	// Read deadline in the past: timeout error.
	_ = ic.SetReadDeadline(time.Now().Add(-time.Second))
	if _, _, err := ic.ReadFrom(buf); err == nil {
		t.Fatal("expected timeout")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("expected timeout error, got %v", err)
	}
	// WireGuard is unaffected.
	transfer(t, a, b, 64<<10)
}

// TestICEOverSharedSocket runs real pion/ice agents over the binds' ICE
// facades; the selected pair's remote address then carries WireGuard.
func TestICEOverSharedSocket(t *testing.T) {
	a, b := newPair(t, false)
	muxA := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: a.bind.ICEConn()})
	muxB := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: b.bind.ICEConn()})
	newAgent := func(m ice.UDPMux) *ice.Agent {
		ag, err := ice.NewAgentWithOptions(
			ice.WithUDPMux(m),
			ice.WithIncludeLoopback(), // tests only: production keeps loopback off
			ice.WithNetworkTypes([]ice.NetworkType{ice.NetworkTypeUDP4}),
			ice.WithCandidateTypes([]ice.CandidateType{ice.CandidateTypeHost}),
			ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
		)
		if err != nil {
			t.Fatal(err)
		}
		return ag
	}
	agA, agB := newAgent(muxA), newAgent(muxB)
	defer func() {
		agA.Close()
		agB.Close()
		muxA.Close()
		muxB.Close()
	}()
	wire := func(from, to *ice.Agent) {
		if err := from.OnCandidate(func(c ice.Candidate) {
			if c == nil {
				return
			}
			rc, err := ice.UnmarshalCandidate(c.Marshal())
			if err == nil {
				_ = to.AddRemoteCandidate(rc)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	wire(agA, agB)
	wire(agB, agA)
	if err := agA.GatherCandidates(); err != nil {
		t.Fatal(err)
	}
	if err := agB.GatherCandidates(); err != nil {
		t.Fatal(err)
	}
	ufragA, pwdA, _ := agA.GetLocalUserCredentials()
	ufragB, pwdB, _ := agB.GetLocalUserCredentials()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := agB.Accept(ctx, ufragA, pwdA)
		errc <- err
	}()
	if _, err := agA.Dial(ctx, ufragB, pwdB); err != nil {
		t.Fatalf("ice dial: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("ice accept: %v", err)
	}
	pairA, err := agA.GetSelectedCandidatePair()
	if err != nil || pairA == nil {
		t.Fatalf("selected pair: %v", err)
	}
	pairB, err := agB.GetSelectedCandidatePair()
	if err != nil || pairB == nil {
		t.Fatalf("selected pair: %v", err)
	}
	remoteA := netip.AddrPortFrom(netip.MustParseAddr(pairA.Remote.Address()), uint16(pairA.Remote.Port()))
	remoteB := netip.AddrPortFrom(netip.MustParseAddr(pairB.Remote.Address()), uint16(pairB.Remote.Port()))
	if remoteA != b.bind.LocalAddr().AddrPort() || remoteB != a.bind.LocalAddr().AddrPort() {
		t.Fatalf("ICE selected %v / %v, not the WireGuard sockets %v / %v", remoteA, remoteB, b.bind.LocalAddr(), a.bind.LocalAddr())
	}
	if err := a.dev.SetEndpoint(b.pub, remoteA.String()); err != nil {
		t.Fatal(err)
	}
	if err := b.dev.SetEndpoint(a.pub, remoteB.String()); err != nil {
		t.Fatal(err)
	}
	waitPing(t, a, b.ip, 30*time.Second)
	transfer(t, a, b, 256<<10)
	if !strings.HasPrefix(pairA.String(), "prio") && pairA.String() == "" {
		t.Log(pairA)
	}
}
