package wg

import (
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// BenchmarkBindSendReceive measures the bind's UDP path alone: one bind sends
// batches of 1280-byte packets to another on loopback, whose ReceiveFunc
// reads them (recvmmsg/sendmmsg). Reports packets/s.
func BenchmarkBindSendReceive(b *testing.B) {
	lo := netip.MustParseAddr("127.0.0.1")
	tx := NewBind(BindConfig{ListenAddr: lo})
	rx := NewBind(BindConfig{ListenAddr: lo})
	if _, _, err := tx.Open(0); err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	fns, _, err := rx.Open(0)
	if err != nil {
		b.Fatal(err)
	}
	defer rx.Close()
	ep, err := tx.ParseEndpoint(rx.LocalAddr().AddrPort().String())
	if err != nil {
		b.Fatal(err)
	}
	const batch = conn.IdealBatchSize
	pkt := make([]byte, 1280)
	pkt[0] = 4 // WireGuard data type, not STUN
	out := make([][]byte, batch)
	for i := range out {
		out[i] = pkt
	}
	in := make([][]byte, batch)
	for i := range in {
		in[i] = make([]byte, 1<<16)
	}
	sizes := make([]int, batch)
	eps := make([]conn.Endpoint, batch)

	received := make(chan int, 1)
	go func() {
		total := 0
		for {
			n, err := fns[0](in, sizes, eps)
			if err != nil {
				received <- total
				return
			}
			for _, s := range sizes[:n] {
				if s > 0 {
					total++
				}
			}
		}
	}()
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt) * batch))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := tx.Send(out, ep); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	time.Sleep(50 * time.Millisecond) // let the reader drain what arrived
	rx.Close()
	got := <-received
	b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "sent-pkts/s")
	b.ReportMetric(float64(got)/elapsed.Seconds(), "recv-pkts/s")
}

// BenchmarkBindRelayDeliver measures DeliverRelay + the relay ReceiveFunc.
func BenchmarkBindRelayDeliver(b *testing.B) {
	bd := NewBind(BindConfig{ListenAddr: netip.MustParseAddr("127.0.0.1")})
	fns, _, err := bd.Open(0)
	if err != nil {
		b.Fatal(err)
	}
	defer bd.Close()
	_, pub := newKey(b)
	pkt := make([]byte, 1280)
	in := [][]byte{make([]byte, 1<<16)}
	sizes := make([]int, 1)
	eps := make([]conn.Endpoint, 1)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for i := 0; i < b.N; i++ {
		bd.DeliverRelay(pub, testRelayURL, pkt)
		if _, err := fns[1](in, sizes, eps); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNetstackTCP measures TCP throughput between two netstack devices
// over the bind on loopback (both ends in this process). Reports Mbit/s.
func BenchmarkNetstackTCP(b *testing.B) {
	a, p := newPair(b, true)
	waitPing(b, a, p.ip, 30*time.Second)
	benchTCP(b, a.dev.Netstack(), p.dev.Netstack(), p.ip)
}

// benchTCP streams b.N MiB from one netstack to the other and reports Mbit/s.
func benchTCP(b *testing.B, from, to *netstack.Net, dst netip.Addr) {
	ln, err := to.ListenTCPAddrPort(netip.AddrPortFrom(dst, 5201))
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	const chunk = 1 << 20
	done := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- 0
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		done <- n
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := from.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(dst, 5201))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, chunk)
	b.SetBytes(chunk)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	_ = c.CloseWrite()
	n := <-done
	elapsed := time.Since(start)
	b.StopTimer()
	c.Close()
	if n != int64(b.N)*chunk {
		b.Fatalf("received %d of %d bytes", n, int64(b.N)*chunk)
	}
	b.ReportMetric(float64(n)*8/1e6/elapsed.Seconds(), "Mbit/s")
}
