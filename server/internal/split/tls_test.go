package split

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"petrel/internal/tlstest"
)

// With Options.TLS the handshake comes first and the decrypted stream is
// sniffed and replayed; a TLS-ALPN-01 challenge ends with its handshake;
// plaintext gets an HTTP/1 client a readable refusal.
func TestTLSRoutes(t *testing.T) {
	ca := tlstest.NewCA(t, "split test CA")
	srvConf := ca.TLSConfig(t, "127.0.0.1")
	srvConf.NextProtos = []string{"h2", "http/1.1", alpnACME}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(ln, Options{TLS: srvConf})
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	defer func() {
		s.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
	}()
	dial := func(protos ...string) *tls.Conn {
		t.Helper()
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1",
			NextProtos: protos, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	for _, tc := range []struct {
		proto, first string
		to           net.Listener
	}{
		{"http/1.1", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", s.HTTP1()},
		{"h2", string(http2Preface) + "frames", s.HTTP2()},
	} {
		c := dial(tc.proto)
		if _, err := c.Write([]byte(tc.first)); err != nil {
			t.Fatal(err)
		}
		got, err := tc.to.Accept()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(tc.first))
		if _, err := io.ReadFull(got, buf); err != nil || string(buf) != tc.first {
			t.Fatalf("%s: replayed %q, %v", tc.proto, buf, err)
		}
		// The routed side writes through TLS too.
		if _, err := got.Write([]byte("ok")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:2]); err != nil || string(buf[:2]) != "ok" {
			t.Fatalf("%s: client read %q, %v", tc.proto, buf[:2], err)
		}
		got.Close()
	}

	// An ACME validator's connection: the handshake, then the server
	// closes; nothing is routed.
	c := dial(alpnACME)
	if p := c.ConnectionState().NegotiatedProtocol; p != alpnACME {
		t.Fatalf("negotiated %q", p)
	}
	_ = c.SetReadDeadline(time.Now().Add(SniffTimeout / 2)) // closed at once, not when the sniff gives up
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("challenge connection left open: %v", err)
	}
	expectNothingRouted(t, s)

	// Plaintext to the TLS port.
	for _, tc := range []struct {
		first, want string
	}{
		{"GET /api/peers HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP request to an HTTPS server"},
		{string(http2Preface), ""}, // a plaintext gRPC client: closed, no text
	} {
		pc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		if _, err := pc.Write([]byte(tc.first)); err != nil {
			t.Fatal(err)
		}
		_ = pc.SetReadDeadline(time.Now().Add(deadline))
		got, _ := io.ReadAll(pc)
		if (tc.want == "" && len(got) != 0) || !strings.Contains(string(got), tc.want) {
			t.Fatalf("plaintext %q answered %q", tc.first[:8], got)
		}
	}
	expectNothingRouted(t, s)
}

func expectNothingRouted(t *testing.T, s *Listener) {
	t.Helper()
	for _, l := range []*chanListener{s.h1, s.h2} {
		select {
		case c := <-l.ch:
			c.Close()
			t.Fatal("a connection without a stream was routed")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// A client that never finishes its handshake is dropped at SniffTimeout
// like one that never shows its protocol; Close does not wait for it.
func TestTLSStalledHandshakeClosedByClose(t *testing.T) {
	ca := tlstest.NewCA(t, "split test CA")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(ln, Options{TLS: ca.TLSConfig(t, "127.0.0.1")})
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte{0x16, 0x03, 0x01}) // the start of a ClientHello, then silence
	time.Sleep(50 * time.Millisecond)
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for a stalled handshake")
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
