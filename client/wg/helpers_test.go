package wg

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"petrel/internal/keys"
)

const testRelayURL = "rel://relay.test:1"

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("WG_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// memRelay is an in-test RelaySender that hands packets to the destination
// bind's DeliverRelay (the real relay client replaces it in the agent).
type memRelay struct {
	mu    sync.RWMutex
	binds map[keys.Public]*Bind
	self  keys.Public
	sent  atomic.Uint64
}

func (r *memRelay) Send(dst keys.Public, url string, pkt []byte) error {
	r.mu.RLock()
	b := r.binds[dst]
	r.mu.RUnlock()
	if b == nil {
		return io.ErrClosedPipe
	}
	r.sent.Add(1)
	b.DeliverRelay(r.self, url, pkt)
	return nil
}

type node struct {
	key   keys.Private
	pub   keys.Public
	ip    netip.Addr
	bind  *Bind
	dev   *Device
	relay *memRelay
}

func (n *node) udpEndpoint() string { return n.bind.LocalAddr().AddrPort().String() }

// newPair builds two netstack devices on 127.0.0.1 with peers configured.
// If withEndpoints is false, peers have no endpoint.
func newPair(t testing.TB, withEndpoints bool) (a, b *node) {
	t.Helper()
	binds := map[keys.Public]*Bind{}
	mk := func(ip string) *node {
		k, err := keys.NewPrivate()
		if err != nil {
			t.Fatal(err)
		}
		n := &node{key: k, pub: k.Public(), ip: netip.MustParseAddr(ip)}
		n.relay = &memRelay{binds: binds, self: n.pub}
		n.bind = NewBind(BindConfig{Logger: testLogger(t), ListenAddr: netip.MustParseAddr("127.0.0.1"), Relay: n.relay})
		n.dev, err = NewDevice(DeviceConfig{
			Netstack:   true,
			Address:    netip.PrefixFrom(n.ip, 16),
			PrivateKey: k,
			Bind:       n.bind,
			Logger:     testLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.dev.Close() })
		binds[n.pub] = n.bind
		return n
	}
	a, b = mk("100.64.0.1"), mk("100.64.0.2")
	ea, eb := "", ""
	if withEndpoints {
		ea, eb = a.udpEndpoint(), b.udpEndpoint()
	}
	if err := a.dev.UpsertPeer(b.pub, []netip.Prefix{netip.PrefixFrom(b.ip, 32)}, eb, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.dev.UpsertPeer(a.pub, []netip.Prefix{netip.PrefixFrom(a.ip, 32)}, ea, 0); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// waitPing pings until one answer arrives or the deadline passes.
func waitPing(t testing.TB, from *node, to netip.Addr, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = from.dev.Ping(ctx, to)
		cancel()
		if err == nil {
			return
		}
	}
	t.Fatalf("no ping reply from %s within %s: %v", to, within, err)
}

// transfer sends n random bytes over TCP from a to b across the overlay and
// checks they arrive intact.
func transfer(t testing.TB, a, b *node, n int) {
	t.Helper()
	ln, err := b.dev.Netstack().ListenTCPAddrPort(netip.AddrPortFrom(b.ip, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := make([]byte, n)
	_, _ = rand.Read(want)
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		buf, _ := io.ReadAll(c)
		got <- buf
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := a.dev.Netstack().DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial across overlay: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(want); err != nil {
		t.Fatalf("write: %v", err)
	}
	c.Close()
	select {
	case buf := <-got:
		if !bytes.Equal(buf, want) {
			t.Fatalf("received %d bytes, want %d identical bytes", len(buf), len(want))
		}
	case <-time.After(90 * time.Second):
		t.Fatal("transfer timed out")
	}
}

func udpAddrPort(a net.Addr) netip.AddrPort { return a.(*net.UDPAddr).AddrPort() }

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func newKey(t testing.TB) (keys.Private, keys.Public) {
	t.Helper()
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k, k.Public()
}
