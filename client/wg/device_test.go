package wg

import (
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestNetstackPairPathSwitch(t *testing.T) {
	a, b := newPair(t, true)

	waitPing(t, a, b.ip, 30*time.Second)
	transfer(t, a, b, 1<<20)
	if n := a.relay.sent.Load() + b.relay.sent.Load(); n != 0 {
		t.Fatalf("relay carried %d packets on the direct path", n)
	}

	// Relay: both sides switch; the devices are not recreated.
	if err := a.dev.SetEndpoint(b.pub, RelayEndpointString(b.pub, testRelayURL)); err != nil {
		t.Fatal(err)
	}
	if err := b.dev.SetEndpoint(a.pub, RelayEndpointString(a.pub, testRelayURL)); err != nil {
		t.Fatal(err)
	}
	// Prove the direct path is no longer used: block it.
	a.bind.SetBlockUDP(func(netip.AddrPort) bool { return true })
	b.bind.SetBlockUDP(func(netip.AddrPort) bool { return true })
	waitPing(t, b, a.ip, 30*time.Second)
	transfer(t, b, a, 1<<20)
	if a.relay.sent.Load() == 0 || b.relay.sent.Load() == 0 {
		t.Fatalf("relay unused: a sent %d, b sent %d", a.relay.sent.Load(), b.relay.sent.Load())
	}
	st, err := a.dev.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got := st[b.pub].Endpoint; got != RelayEndpointString(b.pub, testRelayURL) {
		t.Fatalf("endpoint in stats = %q", got)
	}

	// Back to UDP.
	a.bind.SetBlockUDP(nil)
	b.bind.SetBlockUDP(nil)
	if err := a.dev.SetEndpoint(b.pub, b.udpEndpoint()); err != nil {
		t.Fatal(err)
	}
	if err := b.dev.SetEndpoint(a.pub, a.udpEndpoint()); err != nil {
		t.Fatal(err)
	}
	a.bind.SetRelay(nil) // relay gone: traffic must use UDP
	b.bind.SetRelay(nil)
	transfer(t, a, b, 1<<20)
	waitPing(t, a, b.ip, 30*time.Second)

	st, err = a.dev.Stats()
	if err != nil {
		t.Fatal(err)
	}
	ps := st[b.pub]
	if ps.Endpoint != b.udpEndpoint() || ps.LastHandshake.IsZero() || ps.RxBytes == 0 || ps.TxBytes < 3<<20/2 {
		t.Fatalf("unexpected stats %+v", ps)
	}
}

func TestBlockUDP(t *testing.T) {
	a, b := newPair(t, true)
	waitPing(t, a, b.ip, 30*time.Second)
	blocked := b.bind.LocalAddr().AddrPort()
	a.bind.SetBlockUDP(func(ap netip.AddrPort) bool { return ap == blocked })
	before := a.bind.Stats().BlockedDropped
	for i := 0; i < 3; i++ {
		ctx, cancel := contextWithTimeout(time.Second)
		_, err := a.dev.Ping(ctx, b.ip)
		cancel()
		if err == nil {
			t.Fatal("ping succeeded while the direct path was blocked")
		}
	}
	if a.bind.Stats().BlockedDropped == before {
		t.Fatal("block hook did not count drops")
	}
	a.bind.SetBlockUDP(nil)
	waitPing(t, a, b.ip, 30*time.Second)
}

func TestDeviceConfigErrors(t *testing.T) {
	k, _ := newKey(t)
	for name, cfg := range map[string]DeviceConfig{
		"nil bind":    {Netstack: true, Address: netip.MustParsePrefix("100.64.0.1/16"), PrivateKey: k},
		"no address":  {Netstack: true, PrivateKey: k, Bind: NewBind(BindConfig{})},
		"zero key":    {Netstack: true, Address: netip.MustParsePrefix("100.64.0.1/16"), Bind: NewBind(BindConfig{})},
		"mtu too low": {Netstack: true, Address: netip.MustParsePrefix("100.64.0.1/16"), PrivateKey: k, Bind: NewBind(BindConfig{}), MTU: 100},
	} {
		if _, err := NewDevice(cfg); err == nil {
			t.Errorf("%s: expected error", name)
		}
	}
}

func TestDeviceLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, b := newPair(t, true)
	waitPing(t, a, b.ip, 30*time.Second)
	if err := a.dev.RemovePeer(b.pub); err != nil {
		t.Fatal(err)
	}
	if err := a.dev.RemovePeer(b.pub); err != nil {
		t.Fatal(err)
	}
	if err := a.dev.SetEndpoint(b.pub, b.udpEndpoint()); err == nil {
		t.Fatal("SetEndpoint on removed peer succeeded")
	}
	if err := a.dev.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.dev.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.dev.UpsertPeer(b.pub, nil, "", 0); err == nil {
		t.Fatal("UpsertPeer after Close succeeded")
	}
	b.dev.Close()
}
