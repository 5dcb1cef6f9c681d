package tlstrust

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"petrel/internal/tlstest"
)

func TestLoadRoots(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	_, key := ca.Issue(t, "x.example")
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("ca.pem", append(append([]byte{}, key...), ca.PEM...)) // a key block is skipped
	if pool, err := LoadRoots(""); pool != nil || err != nil {
		t.Fatalf(`LoadRoots("") = %v, %v; want the system roots (nil)`, pool, err)
	}
	if pool, err := LoadRoots(good); err != nil || pool == nil {
		t.Fatalf("good file: %v", err)
	}
	for name, file := range map[string]string{
		"missing":  filepath.Join(dir, "nope.pem"),
		"key only": write("key.pem", key),
		"not PEM":  write("junk.pem", []byte("hello")),
		"bad cert": write("bad.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")),
	} {
		if _, err := LoadRoots(file); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// Explain names what went wrong with real handshakes against a server
// whose certificate is signed by a CA the client does not trust, names
// another host, or that does not speak TLS; other errors are left alone.
func TestExplain(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	srvConf := ca.TLSConfig(t, "right.example", "127.0.0.1")
	tlsAddr := serve(t, func(c net.Conn) {
		tc := tls.Server(c, srvConf)
		_ = tc.Handshake()
		tc.Close()
	})
	plainAddr := serve(t, func(c net.Conn) {
		_, _ = c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n"))
		c.Close()
	})
	dial := func(addr, name string, cfg *tls.Config) error {
		d := &net.Dialer{Timeout: 5 * time.Second}
		cfg.ServerName = name
		c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
	for _, tc := range []struct {
		name   string
		err    error
		reason string
		hint   string
	}{
		{"unknown CA", dial(tlsAddr, "right.example", ClientConfig(nil, "")), "TLS certificate not trusted", "--ca-file"},
		{"other name", dial(tlsAddr, "wrong.example", ClientConfig(ca.Pool(), "")), "not valid for this name", ""},
		{"plaintext server", dial(plainAddr, "right.example", ClientConfig(ca.Pool(), "")), "does not speak TLS", "http://"},
	} {
		ce := Explain(tc.err)
		if ce == nil {
			t.Errorf("%s: %v not explained", tc.name, tc.err)
			continue
		}
		if msg := ce.Error(); !strings.Contains(msg, tc.reason) || !strings.Contains(msg, tc.hint) {
			t.Errorf("%s: %q", tc.name, msg)
		}
	}
	if err := dial(tlsAddr, "right.example", ClientConfig(ca.Pool(), "")); err != nil {
		t.Fatalf("trusted dial: %v", err)
	}
	for _, err := range []error{nil, context.DeadlineExceeded, &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}} {
		if ce := Explain(err); ce != nil {
			t.Errorf("Explain(%v) = %v", err, ce)
		}
	}
}

// serve accepts on loopback and hands each connection to h until the test ends.
func serve(t *testing.T, h func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}
