package wg

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

func socksConnect(t *testing.T, proxy net.Addr, atyp byte, addr []byte, port uint16) (net.Conn, byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxy.String(), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		t.Fatal(err)
	}
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil || sel != [2]byte{5, 0} {
		t.Fatalf("method selection %v, %v", sel, err)
	}
	req := append([]byte{5, 1, 0, atyp}, addr...)
	req = binary.BigEndian.AppendUint16(req, port)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	var rep [10]byte
	if _, err := io.ReadFull(c, rep[:4]); err != nil {
		t.Fatalf("read reply: %v", err)
	}
	rest := 6
	if rep[3] == socksAtypIPv6 {
		rest = 18
	}
	if _, err := io.ReadFull(c, make([]byte, rest)); err != nil {
		t.Fatalf("read reply address: %v", err)
	}
	return c, rep[1]
}

func TestSOCKS5ThroughOverlay(t *testing.T) {
	a, b := newPair(t, true)
	ln, err := b.dev.Netstack().ListenTCPAddrPort(netip.AddrPortFrom(b.ip, 8080))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	proxy, err := a.dev.ServeSOCKS5(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.dev.ServeSOCKS5(ctx, "0.0.0.0:0"); err == nil {
		t.Fatal("non-loopback listen accepted")
	}

	c, rep := socksConnect(t, proxy, socksAtypIPv4, b.ip.AsSlice(), 8080)
	if rep != socksRepSucceeded {
		t.Fatalf("reply %d", rep)
	}
	msg := bytes.Repeat([]byte("petrel"), 1000)
	go func() { _, _ = c.Write(msg) }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through socks: %v", err)
	}
	c.Close()

	// Domain that is an IP literal works; a real name is refused properly.
	c, rep = socksConnect(t, proxy, socksAtypDomain, append([]byte{byte(len(b.ip.String()))}, b.ip.String()...), 8080)
	c.Close()
	if rep != socksRepSucceeded {
		t.Fatalf("ip-literal domain reply %d", rep)
	}
	name := "peer.petrel.internal"
	c, rep = socksConnect(t, proxy, socksAtypDomain, append([]byte{byte(len(name))}, name...), 8080)
	c.Close()
	if rep != socksRepHostUnreachable {
		t.Fatalf("unresolvable name reply %d", rep)
	}

	// Pluggable resolver.
	proxy2, err := a.dev.ServeSOCKS5(ctx, "127.0.0.1:0", SOCKSOptions{Resolve: func(_ context.Context, host string) (netip.Addr, error) {
		if host == name {
			return b.ip, nil
		}
		return netip.Addr{}, errors.New("nx")
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, rep = socksConnect(t, proxy2, socksAtypDomain, append([]byte{byte(len(name))}, name...), 8080)
	c.Close()
	if rep != socksRepSucceeded {
		t.Fatalf("resolved name reply %d", rep)
	}
	cancel()
	a.dev.Close() // waits for the SOCKS goroutines
}

func TestSOCKSRequestErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		rep  byte // 0xff: plain read error
	}{
		{"bind command", []byte{5, 2, 0, 1, 1, 2, 3, 4, 0, 80}, socksRepCmdUnsupported},
		{"bad atyp", []byte{5, 1, 0, 9}, socksRepAtypUnsupported},
		{"bad version", []byte{4, 1, 0, 1}, socksRepGeneralFailure},
		{"empty domain", []byte{5, 1, 0, 3, 0}, socksRepGeneralFailure},
		{"truncated", []byte{5, 1, 0, 1, 1}, 0xff},
	}
	for _, tc := range tests {
		_, err := readSOCKSRequest(bytes.NewReader(tc.in))
		var se *socksError
		switch {
		case tc.rep == 0xff && (err == nil || errors.As(err, &se)):
			t.Errorf("%s: want read error, got %v", tc.name, err)
		case tc.rep != 0xff && (!errors.As(err, &se) || se.rep != tc.rep):
			t.Errorf("%s: want rep %d, got %v", tc.name, tc.rep, err)
		}
	}
	req, err := readSOCKSRequest(bytes.NewReader([]byte{5, 1, 0, 4, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x1f, 0x90}))
	if err != nil || req.addr != netip.MustParseAddr("fd00::1") || req.port != 8080 {
		t.Fatalf("ipv6 request: %+v %v", req, err)
	}
}

// FuzzSOCKSRequest feeds arbitrary client bytes to the greeting and request
// parsers: they must never panic, and a parsed request must be consistent.
func FuzzSOCKSRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
	f.Add([]byte{5, 1, 0, 5, 1, 0, 3, 4, 'h', 'o', 's', 't', 1, 187})
	f.Add([]byte{5, 2, 2, 0, 5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 22})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		ok, err := readSOCKSGreeting(r)
		if err != nil || !ok {
			return
		}
		req, err := readSOCKSRequest(r)
		if err != nil {
			return
		}
		if req.host == "" && !req.addr.IsValid() {
			t.Fatalf("request without destination: %+v", req)
		}
		if req.host != "" && len(req.host) > 255 {
			t.Fatalf("host too long")
		}
	})
}

func TestSOCKSReply(t *testing.T) {
	if got := socksReply(0, netip.AddrPort{}); !bytes.Equal(got, []byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}) {
		t.Fatalf("zero reply %v", got)
	}
	if got := socksReply(0, netip.MustParseAddrPort("[fd00::1]:258")); len(got) != 22 || got[3] != 4 || got[20] != 1 || got[21] != 2 {
		t.Fatalf("v6 reply %v", got)
	}
}
