package firewall

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestCloseStopsGC(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := newFakeClock()
	f := New(nil, WithClock(clk.Now), WithGCInterval(time.Millisecond))
	f.Apply(Config{Self: pfx(self), Rules: []Rule{{Direction: Out, Proto: UDP, Peers: pfx(peerA)}}})
	for i := 0; i < 100; i++ {
		mustPass(t, f.Outbound(udp(self, peerA, uint16(i), 53)), "out")
	}
	if n := f.ct.total.Load(); n != 100 {
		t.Fatalf("entries = %d", n)
	}
	clk.Advance(udpNewTimeout + time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for f.ct.total.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("GC left %d entries", f.ct.total.Load())
		}
		time.Sleep(time.Millisecond)
	}
	f.Close()
	f.Close() // idempotent
	mustDrop(t, f.Inbound(udp(peerA, self, 53, 1)), "after Close, expired flow")
}

func TestNoGCGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := New(nil, WithGCInterval(0))
	f.Close()
	f.Close()
}
