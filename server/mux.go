package server

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// http2Preface starts every HTTP/2 connection with prior knowledge (how
// gRPC clients speak plaintext HTTP/2).
var http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// splitListener hands accepted connections to one of two listeners: h2
// (HTTP/2 prior knowledge: gRPC) or h1 (HTTP/1.x: REST and the relay
// WebSocket). Sniffing keeps gRPC on grpc-go's native server, which is much
// faster than serving gRPC through net/http.
type splitListener struct {
	ln       net.Listener
	h1, h2   *chanListener
	once     sync.Once
	sniffFor time.Duration
}

func newSplitListener(ln net.Listener) *splitListener {
	s := &splitListener{ln: ln, sniffFor: 10 * time.Second}
	s.h1 = newChanListener(ln.Addr())
	s.h2 = newChanListener(ln.Addr())
	return s
}

// serve runs the accept loop until the listener closes.
func (s *splitListener) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.close()
			return
		}
		go s.route(c)
	}
}

func (s *splitListener) route(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(s.sniffFor))
	br := bufio.NewReaderSize(c, 4096)
	head, err := br.Peek(len(http2Preface))
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	if err == nil && bytes.Equal(head, http2Preface) {
		s.h2.deliver(pc)
		return
	}
	if err != nil && len(head) == 0 {
		c.Close()
		return
	}
	s.h1.deliver(pc)
}

func (s *splitListener) close() {
	s.once.Do(func() {
		s.ln.Close()
		s.h1.Close()
		s.h2.Close()
	})
}

// peekedConn replays the sniffed bytes.
type peekedConn struct {
	net.Conn
	r io.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// chanListener is a net.Listener fed by splitListener.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
