package split

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
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
	s := New(ln, Options{})
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

// flakyListener fails its first n Accepts with err, then accepts from ln.
type flakyListener struct {
	net.Listener
	n   int
	err error
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if f.n > 0 {
		f.n--
		return nil, f.err
	}
	return f.Listener.Accept()
}

// Running out of descriptors (EMFILE, ENFILE) or a connection aborted
// before accept must not end Serve: it backs off and keeps accepting.
func TestServeSurvivesTemporaryAcceptErrors(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED} {
		t.Run(errno.Error(), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			// As net.TCPListener reports it: *net.OpError{Err: *os.SyscallError}.
			accErr := &net.OpError{Op: "accept", Net: "tcp", Addr: ln.Addr(), Err: os.NewSyscallError("accept4", errno)}
			s := New(&flakyListener{Listener: ln, n: 8, err: accErr}, Options{})
			served := make(chan error, 1)
			go func() { served <- s.Serve() }()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			got := make(chan net.Conn, 1)
			go func() {
				if c, err := s.HTTP1().Accept(); err == nil {
					got <- c
				}
			}()
			select {
			case err := <-served:
				t.Fatalf("Serve returned on %v: %v", errno, err)
			case c := <-got:
				c.Close()
			case <-time.After(deadline):
				t.Fatal("connection not routed after the accept errors")
			}
			s.Close()
			if err := <-served; err != nil {
				t.Errorf("Serve after Close: %v", err)
			}
		})
	}
}

// A permanent accept error still ends Serve with that error.
func TestServeReturnsPermanentAcceptError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	perm := errors.New("listener broken")
	s := New(&flakyListener{Listener: ln, n: 1, err: perm}, Options{})
	if err := s.Serve(); !errors.Is(err, perm) {
		t.Fatalf("Serve = %v, want %v", err, perm)
	}
	s.Close()
}

// The MaxPerSource+1st connection from one IP is closed at once, another
// IP still gets in, and closing a connection frees its slot.
func TestMaxPerSource(t *testing.T) {
	const max = 4
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(ln, Options{MaxPerSource: max})
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	defer func() {
		s.Close()
		s.CloseConns()
		if err := <-served; err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
	}()
	accepted := make(chan net.Conn, 2*max)
	go func() {
		for {
			c, err := s.HTTP1().Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(src string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		return c
	}
	routed := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(deadline):
			t.Fatal("connection not routed")
			return nil
		}
	}
	closedByServer := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return err != nil && !(errors.As(err, &ne) && ne.Timeout())
	}
	var first []net.Conn
	for range max {
		dial("127.0.0.1")
		first = append(first, routed())
	}
	over := dial("127.0.0.1")
	if !closedByServer(over) {
		t.Fatalf("connection %d from one source was not closed", max+1)
	}
	other := dial("127.0.0.2")
	routed()
	if closedByServer(other) {
		t.Fatal("another source was refused")
	}
	first[0].Close() // frees a slot for 127.0.0.1
	dial("127.0.0.1")
	routed()
}
