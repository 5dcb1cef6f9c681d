//go:build lab

package lab_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"petrel/lab"
)

// sendCount sends n numbered datagrams from h to sink and returns how many
// distinct ones arrived. A reader drains the sink while sending (so its
// buffer never overflows) and stops after 2 s of silence.
func sendCount(t *testing.T, h *lab.Host, sink *net.UDPConn, n int) int {
	t.Helper()
	dst := netip.MustParseAddrPort(sink.LocalAddr().String())
	c, err := h.ListenUDP("0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	counted := make(chan int, 1)
	readErr := make(chan error, 1)
	go func() {
		seen := map[uint32]bool{}
		rb := make([]byte, 128)
		for {
			_ = sink.SetReadDeadline(time.Now().Add(2 * time.Second))
			m, _, err := sink.ReadFromUDPAddrPort(rb)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				counted <- len(seen)
				return
			}
			if err != nil {
				readErr <- err
				return
			}
			if m >= 4 {
				seen[binary.BigEndian.Uint32(rb)] = true
			}
		}
	}()
	buf := make([]byte, 64)
	for i := range n {
		binary.BigEndian.PutUint32(buf, uint32(i))
		if _, err := c.WriteToUDPAddrPort(buf, dst); err != nil {
			t.Fatal(err)
		}
		if i%20 == 19 {
			time.Sleep(time.Millisecond) // pacing, not a timing assertion
		}
	}
	select {
	case got := <-counted:
		return got
	case err := <-readErr:
		t.Fatal(err)
	}
	return 0
}

func TestLossAndRateImpairments(t *testing.T) {
	l := lab.NewT(t, lab.Options{})
	srv, err := l.AddServerHost("srv", lab.ServerAddr)
	if err != nil {
		t.Fatal(err)
	}
	h, err := l.AddNATHost("h", lab.EIM)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := srv.ListenUDP(netip.AddrPortFrom(srv.Addr, 9000).String())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	// A large receive buffer keeps a slow reader (loaded CI) from turning
	// into loss; SO_RCVBUFFORCE needs CAP_NET_ADMIN, which lab tests have.
	if rc, err := sink.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 8<<20)
		})
	}
	if got := sendCount(t, h, sink, 200); got < 195 {
		t.Fatalf("without loss only %d/200 arrived", got)
	}
	for _, tc := range []struct {
		host *lab.Host
		desc string
	}{{h, "NAT host (router forward path)"}, {srv, "bridge host (own input/output)"}} {
		if err := tc.host.SetLoss(10); err != nil {
			t.Fatal(err)
		}
		got := sendCount(t, h, sink, 1000)
		lost := 100 * float64(1000-got) / 1000
		t.Logf("%s: 10%% loss configured, %.1f%% lost", tc.desc, lost)
		if lost < 2 || lost > 25 {
			t.Errorf("%s: lost %.1f%%, want 2..25%% at 10%% configured", tc.desc, lost)
		}
		if err := tc.host.SetLoss(0); err != nil {
			t.Fatal(err)
		}
		if err := tc.host.SetLoss(0); err != nil {
			t.Fatalf("second SetLoss(0): %v", err)
		}
		if got := sendCount(t, h, sink, 200); got < 195 {
			t.Fatalf("%s: after removing loss only %d/200 arrived", tc.desc, got)
		}
	}

	if err := h.SetRate(20); err != nil {
		t.Fatal(err)
	}
	q, err := h.Qdiscs()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(q, "tbf") != 2 || !strings.Contains(q, "rate 20Mbit") {
		t.Fatalf("tc qdisc show after SetRate(20):\n%s", q)
	}
	if err := h.SetRate(0); err != nil {
		t.Fatal(err)
	}
	if q, _ := h.Qdiscs(); strings.Contains(q, "tbf") {
		t.Fatalf("tbf left after SetRate(0):\n%s", q)
	}
	if err := h.SetRate(0); err != nil {
		t.Fatalf("second SetRate(0): %v", err)
	}
}

func TestDelayImpairment(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	l := lab.NewT(t, lab.Options{})
	srv, err := l.AddServerHost("srv", lab.ServerAddr)
	if err != nil {
		t.Fatal(err)
	}
	h, err := l.AddNATHost("h", lab.EIM)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	minRTT := func(host *lab.Host) float64 {
		t.Helper()
		out, err := host.Run(ctx, "ping", "-n", "-c", "5", "-i", "0.2", "-W", "5", srv.Addr.String())
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`= ([0-9.]+)/`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no rtt in %q", out)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		t.Logf("min RTT %s -> %s: %.2f ms", host.Name, srv.Name, v)
		return v
	}
	// A lower bound only: a deliberate delay cannot make packets faster,
	// and load can only add to it.
	if err := h.SetDelay(40 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if rtt := minRTT(h); rtt < 75 {
		t.Fatalf("min RTT %.1f ms with 40 ms each way, want >= 75", rtt)
	}
	// Loss and delay together, and TCP through the delayed path.
	if err := h.SetLoss(5); err != nil {
		t.Fatal(err)
	}
	ln, err := srv.ListenTCP(srv.Addr.String() + ":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	c, err := h.DialContext(ctx, "tcp", srv.Addr.String()+":8080")
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("petrel"), 50000)
	go c.Write(msg)
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("TCP echo through delay+loss: %v", err)
	}
	c.Close()
	if err := h.SetLoss(0); err != nil {
		t.Fatal(err)
	}
	// A bridge host delays its own input and output.
	if err := h.SetDelay(0); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetDelay(30 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if rtt := minRTT(h); rtt < 55 {
		t.Fatalf("min RTT %.1f ms with 30 ms each way on the server, want >= 55", rtt)
	}
	if err := srv.SetDelay(0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Run(ctx, "ping", "-c", "1", "-W", "5", srv.Addr.String()); err != nil {
		t.Fatalf("ping after removing delay: %v", err)
	}
	ln.Close()
	// SetDelay(0) stopped both delayers.
	goleak.VerifyNone(t, ignore)
}
