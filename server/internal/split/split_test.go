package split

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const deadline = 30 * time.Second

func TestIsHTTP2(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		h2       bool
		err      bool
	}{
		{"preface", string(http2Preface), true, false},
		{"preface and frames", string(http2Preface) + "\x00\x00\x00\x04\x00\x00\x00\x00\x00", true, false},
		{"short HTTP/1.0 request", "GET / HTTP/1.0\r\n\r\n", false, false},
		{"PUT shares the first byte", "PUT /x HTTP/1.1\r\n", false, false},
		{"HTTP/1.1 PRI look-alike", "PRI * HTTP/1.1\r\n\r\n", false, false},
		{"empty", "", false, true},
		{"truncated preface", "PRI * HTTP/2.0\r\n", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReaderSize(bytes.NewReader([]byte(tc.in)), 4096)
			h2, err := isHTTP2(br)
			if h2 != tc.h2 || (err != nil) != tc.err {
				t.Fatalf("got %v, %v", h2, err)
			}
			if err == nil {
				if rest, _ := io.ReadAll(br); string(rest) != tc.in {
					t.Fatalf("replayed %q", rest)
				}
			}
		})
	}
}

// A short HTTP/1 request is routed on its first bytes, not after the sniff
// timeout: on a pipe that never delivers more, isHTTP2 must return.
func TestIsHTTP2DoesNotWaitForMoreBytes(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() { _, _ = b.Write([]byte("GET / HTTP/1.0\r\n\r\n")) }()
	res := make(chan error, 1)
	go func() {
		h2, err := isHTTP2(bufio.NewReader(a))
		if err == nil && h2 {
			err = errors.New("classified as HTTP/2")
		}
		res <- err
	}()
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(deadline):
		t.Fatal("isHTTP2 waited for bytes the client will never send")
	}
}

func FuzzIsHTTP2(f *testing.F) {
	f.Add([]byte(http2Preface))
	f.Add([]byte("GET /relay HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"))
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(in), 4096)
		h2, err := isHTTP2(br)
		if h2 != bytes.HasPrefix(in, http2Preface) {
			t.Fatalf("isHTTP2(%q) = %v", in, h2)
		}
		if err != nil {
			// Only an input that is a strict prefix of the preface runs out.
			if !bytes.HasPrefix(http2Preface, in) || len(in) == len(http2Preface) {
				t.Fatalf("isHTTP2(%q) error %v", in, err)
			}
			return
		}
		if rest, _ := io.ReadAll(br); !bytes.Equal(rest, in) {
			t.Fatalf("replayed %q, want %q", rest, in)
		}
	})
}

// Connections go to the listener their first bytes call for, replayed
// intact; Close and CloseConns release everything.
func TestListenerRoutes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(ln)
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	defer func() {
		s.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
	}()
	for _, tc := range []struct {
		first string
		to    net.Listener
	}{
		{"GET / HTTP/1.0\r\n\r\n", s.HTTP1()},
		{string(http2Preface) + "frames", s.HTTP2()},
	} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(tc.first)); err != nil {
			t.Fatal(err)
		}
		got, err := tc.to.Accept()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(tc.first))
		if _, err := io.ReadFull(got, buf); err != nil || string(buf) != tc.first {
			t.Fatalf("replayed %q, %v", buf, err)
		}
		// CloseConns closes what was routed: the client sees EOF.
		s.CloseConns()
		_ = c.SetReadDeadline(time.Now().Add(deadline))
		if _, err := c.Read(buf); err == nil {
			t.Fatal("routed connection still open after CloseConns")
		}
	}
}
