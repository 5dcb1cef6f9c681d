package wg

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// A peer whose packets carry an inner source outside the allowed IPs the
// receiver has for it is dropped by WireGuard and counted per peer.
func TestSpoofedPacketsCounted(t *testing.T) {
	a, b := newPair(t, true)
	waitPing(t, b, a.ip, 10*time.Second) // session up; nothing spoofed yet
	if n := a.dev.Spoofed(b.pub); n != 0 {
		t.Fatalf("spoofed %d before any spoofing", n)
	}
	// From now on a expects b's packets from 10.99.0.0/24 only: b's real
	// source address is a spoofed one for a.
	if err := a.dev.UpsertPeer(b.pub, []netip.Prefix{netip.MustParsePrefix("10.99.0.0/24")}, "", 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, _ = b.dev.Ping(ctx, a.ip)
		cancel()
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.dev.Spoofed(b.pub) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := a.dev.Spoofed(b.pub); n == 0 {
		t.Fatal("spoofed packets not counted")
	}
	if n := b.dev.Spoofed(a.pub); n != 0 {
		t.Fatalf("b counted %d spoofed packets from a", n)
	}
}
