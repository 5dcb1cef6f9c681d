// Package split serves two protocols on one TCP listener: it sniffs each
// new connection for the HTTP/2 client preface and hands it to one of two
// net.Listeners, HTTP2 (prior-knowledge HTTP/2: gRPC, for grpc-go's native
// server) or HTTP1 (everything else: net/http). With Options.TLS it first
// terminates TLS and sniffs the decrypted stream (tls.go). See
// docs/adr-001-one-port-listener.md and docs/https.md.
//
// Imported by package server only. Serve runs the accept loop in the
// caller's goroutine plus one short-lived goroutine per connection until
// the connection is routed; Close may be called from any goroutine.
package split

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
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

// Accept-error backoff: a temporary accept error (EMFILE, ENFILE,
// ECONNABORTED, ...) is retried after acceptBackoffMin, doubling up to
// acceptBackoffMax while the errors last.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	// acceptLogEvery rate-limits the log line for accept errors.
	acceptLogEvery = 10 * time.Second
)

// Options tune a Listener; the zero value is valid.
type Options struct {
	// MaxPerSource caps the connections open at once from one source IP
	// (accepted and not yet closed, whichever protocol); a connection over
	// the cap is closed as soon as it is accepted. 0 = no cap.
	MaxPerSource int
	// Logger receives accept errors (rate-limited) and, at debug level,
	// failed TLS handshakes; nil discards them.
	Logger *slog.Logger
	// TLS, when set, is the server side of a TLS handshake each connection
	// completes (within SniffTimeout) before it is sniffed; HTTP1 and HTTP2
	// then get the decrypted stream. A connection that negotiates the ACME
	// TLS-ALPN-01 protocol is closed after its handshake.
	TLS *tls.Config
}

// errNoStream marks a connection with nothing to route: its TLS handshake
// failed or answered an ACME challenge.
var errNoStream = errors.New("no stream to route")

// Listener hands the connections accepted on one listener to HTTP1 or
// HTTP2.
type Listener struct {
	ln     net.Listener
	h1, h2 *chanListener
	opts   Options

	mu      sync.Mutex
	closed  bool
	pending map[net.Conn]struct{}    // accepted, not yet routed
	routed  map[*peekedConn]struct{} // handed to HTTP1 or HTTP2, not yet closed
	routing sync.WaitGroup

	// srcMu, not mu: Close closes pending connections under mu.
	srcMu    sync.Mutex
	perSrc   map[netip.Addr]int // open connections per source (with MaxPerSource)
	refused  uint64             // connections closed for MaxPerSource
	stopWait chan struct{}      // closed by Close: ends an accept backoff early
}

// New wraps ln; call Serve to start routing.
func New(ln net.Listener, opts Options) *Listener {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Listener{
		ln:       ln,
		h1:       newChanListener(ln.Addr()),
		h2:       newChanListener(ln.Addr()),
		opts:     opts,
		pending:  map[net.Conn]struct{}{},
		routed:   map[*peekedConn]struct{}{},
		perSrc:   map[netip.Addr]int{},
		stopWait: make(chan struct{}),
	}
}

// temporaryAcceptError reports whether an accept error is a condition the
// accept loop should wait out rather than die of: descriptor or buffer
// exhaustion, or a connection aborted before it was accepted.
func temporaryAcceptError(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne interface{ Temporary() bool }
	return errors.As(err, &ne) && ne.Temporary()
}

// HTTP1 receives connections that do not start with the HTTP/2 preface.
func (s *Listener) HTTP1() net.Listener { return s.h1 }

// HTTP2 receives connections that start with the HTTP/2 preface (replayed).
func (s *Listener) HTTP2() net.Listener { return s.h2 }

// Serve runs the accept loop until the listener fails or is closed; it
// returns the error unless Close caused it.
//
// Temporary errors (EMFILE and the like: see temporaryAcceptError) do not
// end it: they are logged at most every acceptLogEvery and retried after a
// backoff of 5 ms doubling to 1 s, so running out of descriptors stalls
// new connections until the timeouts free some, instead of stopping the
// server.
func (s *Listener) Serve() error {
	var (
		backoff  time.Duration
		lastLog  time.Time
		suppress int
	)
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
			if !temporaryAcceptError(err) {
				return err
			}
			if backoff == 0 {
				backoff = acceptBackoffMin
			} else {
				backoff = min(2*backoff, acceptBackoffMax)
			}
			if now := time.Now(); now.Sub(lastLog) >= acceptLogEvery {
				s.opts.Logger.Warn("accept failed; retrying", "err", err, "backoff", backoff, "suppressed", suppress)
				lastLog, suppress = now, 0
			} else {
				suppress++
			}
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.stopWait:
				t.Stop()
			}
			continue
		}
		backoff = 0
		c = s.admit(c)
		if c == nil {
			continue
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

// admit applies MaxPerSource: it returns c wrapped so that closing it
// releases its slot, or nil (c closed) when its source is over the cap.
func (s *Listener) admit(c net.Conn) net.Conn {
	if s.opts.MaxPerSource <= 0 {
		return c
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return c // not IP (a test pipe): nothing to count
	}
	src := ap.Addr().Unmap()
	s.srcMu.Lock()
	if s.perSrc[src] >= s.opts.MaxPerSource {
		s.refused++
		n := s.refused
		s.srcMu.Unlock()
		if n == 1 || n%1000 == 0 {
			s.opts.Logger.Warn("connection refused: too many from one source", "source", src, "max", s.opts.MaxPerSource, "refused_total", n)
		}
		c.Close()
		return nil
	}
	s.perSrc[src]++
	s.srcMu.Unlock()
	return &countedConn{Conn: c, owner: s, src: src}
}

// countedConn gives its MaxPerSource slot back when closed.
type countedConn struct {
	net.Conn
	owner *Listener
	src   netip.Addr
	once  sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.owner.srcMu.Lock()
		if n := c.owner.perSrc[c.src] - 1; n > 0 {
			c.owner.perSrc[c.src] = n
		} else {
			delete(c.owner.perSrc, c.src)
		}
		c.owner.srcMu.Unlock()
	})
	return c.Conn.Close()
}

// route terminates TLS (with Options.TLS), sniffs the protocol and hands
// the connection on; the TLS handshake and the sniff share SniffTimeout.
func (s *Listener) route(c net.Conn) {
	defer s.routing.Done()
	_ = c.SetDeadline(time.Now().Add(SniffTimeout))
	conn, err := c, error(nil)
	if s.opts.TLS != nil {
		if tc := s.terminateTLS(c); tc != nil {
			conn = tc
		} else {
			err = errNoStream
		}
	}
	br := bufio.NewReaderSize(conn, 4096)
	h2 := false
	if err == nil {
		h2, err = isHTTP2(br)
	}
	_ = c.SetDeadline(time.Time{})
	pc := &peekedConn{Conn: conn, r: br, raw: c, owner: s}
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
		close(s.stopWait)
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
// the HTTP/2 handshake holds grpc.Server.Stop until it is closed). It
// closes the sockets under TLS, so no close_notify waits on a stalled
// client.
func (s *Listener) CloseConns() {
	s.mu.Lock()
	conns := make([]*peekedConn, 0, len(s.routed))
	for c := range s.routed {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.owner.mu.Lock()
		delete(c.owner.routed, c)
		c.owner.mu.Unlock()
		c.raw.Close()
	}
}

// peekedConn replays the sniffed bytes and leaves the routed set when
// closed. Conn is the TLS connection with Options.TLS, raw the socket.
type peekedConn struct {
	net.Conn
	r     io.Reader
	raw   net.Conn
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
