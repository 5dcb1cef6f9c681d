// Package split serves two protocols on one TCP listener: it sniffs each
// new connection for the HTTP/2 client preface and hands it to one of two
// net.Listeners, HTTP2 (prior-knowledge HTTP/2: gRPC, for grpc-go's native
// server) or HTTP1 (everything else: net/http). See
// docs/adr-001-one-port-listener.md.
//
// Imported by package server only. Serve runs the accept loop in the
// caller's goroutine plus one short-lived goroutine per connection until
// the connection is routed; Close may be called from any goroutine.
package split

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

// SniffTimeout is how long a new connection may take to show which
// protocol it speaks.
const SniffTimeout = 10 * time.Second

// isHTTP2 reads from br only as far as needed to tell whether the
// connection starts with the HTTP/2 preface: it stops at the first byte
// that differs, so a short HTTP/1 request is never held back waiting for
// 24 bytes. The bytes read stay buffered in br.
func isHTTP2(br *bufio.Reader) (bool, error) {
	want := 1
	for {
		if _, err := br.Peek(want); err != nil {
			return false, err
		}
		head, _ := br.Peek(min(br.Buffered(), len(http2Preface)))
		if !bytes.HasPrefix(http2Preface, head) {
			return false, nil
		}
		if len(head) == len(http2Preface) {
			return true, nil
		}
		want = len(head) + 1
	}
}

// Listener hands the connections accepted on one listener to HTTP1 or
// HTTP2.
type Listener struct {
	ln     net.Listener
	h1, h2 *chanListener

	mu      sync.Mutex
	closed  bool
	pending map[net.Conn]struct{}    // accepted, not yet routed
	routed  map[*peekedConn]struct{} // handed to HTTP1 or HTTP2, not yet closed
	routing sync.WaitGroup
}

// New wraps ln; call Serve to start routing.
func New(ln net.Listener) *Listener {
	return &Listener{
		ln:      ln,
		h1:      newChanListener(ln.Addr()),
		h2:      newChanListener(ln.Addr()),
		pending: map[net.Conn]struct{}{},
		routed:  map[*peekedConn]struct{}{},
	}
}

// HTTP1 receives connections that do not start with the HTTP/2 preface.
func (s *Listener) HTTP1() net.Listener { return s.h1 }

// HTTP2 receives connections that start with the HTTP/2 preface (replayed).
func (s *Listener) HTTP2() net.Listener { return s.h2 }

// Serve runs the accept loop until the listener fails or is closed; it
// returns the error unless Close caused it.
func (s *Listener) Serve() error {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.pending[c] = struct{}{}
		s.routing.Add(1)
		s.mu.Unlock()
		go s.route(c)
	}
}

func (s *Listener) route(c net.Conn) {
	defer s.routing.Done()
	_ = c.SetReadDeadline(time.Now().Add(SniffTimeout))
	br := bufio.NewReaderSize(c, 4096)
	h2, err := isHTTP2(br)
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br, owner: s}
	s.mu.Lock()
	delete(s.pending, c)
	closed := s.closed
	if err == nil && !closed {
		s.routed[pc] = struct{}{}
	}
	s.mu.Unlock()
	if err != nil || closed {
		c.Close()
		return
	}
	if h2 {
		s.h2.deliver(pc)
	} else {
		s.h1.deliver(pc)
	}
}

// Close stops accepting, closes the listener, HTTP1, HTTP2 and every
// connection not yet routed, and waits for the routing goroutines.
// Idempotent.
func (s *Listener) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.ln.Close()
		s.h1.Close()
		s.h2.Close()
		for c := range s.pending {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.routing.Wait()
}

// CloseConns closes every routed connection that is still open, for a
// shutdown that cannot wait any longer (a client stalled in the middle of
// the HTTP/2 handshake holds grpc.Server.Stop until it is closed).
func (s *Listener) CloseConns() {
	s.mu.Lock()
	conns := make([]*peekedConn, 0, len(s.routed))
	for c := range s.routed {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// peekedConn replays the sniffed bytes and leaves the routed set when
// closed.
type peekedConn struct {
	net.Conn
	r     io.Reader
	owner *Listener
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

func (p *peekedConn) Close() error {
	p.owner.mu.Lock()
	delete(p.owner.routed, p)
	p.owner.mu.Unlock()
	return p.Conn.Close()
}

// chanListener is a net.Listener fed by Listener.
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
