package relay

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"petrel/internal/keys"
	"petrel/relay/auth"
	"petrel/relay/frame"
	"petrel/relay/internal/cork"
)

// errOversized reports a message larger than frame.MaxFrame.
var errOversized = errors.New("frame exceeds maximum size")

// conn is one client connection. Its read goroutine (serve) owns rbuf, the
// rate limiters and the unreachable memo; any goroutine may enqueue.
type conn struct {
	s      *Server
	ws     *websocket.Conn
	log    *slog.Logger
	remote string
	peer   keys.Public // set once authenticated
	seq    uint64      // authentication order on this server: the newer connection of a peer wins

	out       chan *[]byte
	wmu       sync.Mutex   // serializes websocket writes (write goroutine vs inline delivery)
	slowUntil atomic.Int64 // unix nanos; while in the future, deliveries queue instead of writing inline
	done      chan struct{}
	closeOnce sync.Once
	lastRead  atomic.Int64 // unix nanos

	rbuf        []byte
	cc          *cork.Conn    // nil if the connection was not hijacked through hijackWriter
	br          *bufio.Reader // the websocket's read buffer (read goroutine only)
	corkedDsts  []*conn       // connections this read goroutine corked (read goroutine only)
	bad         *rate.Limiter
	unreach     *rate.Limiter
	unreachSeen map[keys.Public]time.Time
}

func newConn(s *Server, ws *websocket.Conn, remote string, cc *cork.Conn, br *bufio.Reader) *conn {
	ws.SetReadLimit(frame.MaxFrame + 1) // the extra byte lets readFrame see "too big" itself
	c := &conn{
		s: s, ws: ws, remote: remote, cc: cc, br: br,
		log:         s.log.With("remote", remote),
		out:         make(chan *[]byte, s.cfg.SendQueue),
		done:        make(chan struct{}),
		rbuf:        make([]byte, initialReadBuf),
		bad:         rate.NewLimiter(rate.Limit(s.cfg.BadFrameRate), s.cfg.BadFrameBurst),
		unreach:     rate.NewLimiter(rate.Limit(s.cfg.UnreachableRate), int(s.cfg.UnreachableRate)+1),
		unreachSeen: make(map[keys.Public]time.Time),
	}
	c.lastRead.Store(time.Now().UnixNano())
	return c
}

// closeWith closes the websocket once, in the background (the close
// handshake may take a while); the read goroutine then ends serve.
func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		close(c.done)
		c.s.wg.Add(1)
		go func() {
			defer c.s.wg.Done()
			c.ws.Close(code, reason)
		}()
	})
}

// readFrame reads one whole message into c.rbuf. Text messages are returned
// with binary=false so the caller can count them as bad frames.
func (c *conn) readFrame(ctx context.Context) (b []byte, binary bool, err error) {
	typ, r, err := c.ws.Reader(ctx)
	if err != nil {
		return nil, false, err
	}
	n := 0
	for {
		if n == len(c.rbuf) {
			c.rbuf = growBuf(c.rbuf, n)
		}
		m, err := r.Read(c.rbuf[n:])
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, err
		}
		if n > frame.MaxFrame {
			return nil, false, errOversized
		}
	}
	c.lastRead.Store(time.Now().UnixNano())
	return c.rbuf[:n], typ == websocket.MessageBinary, nil
}

func (c *conn) serve() {
	defer c.closeWith(websocket.StatusNormalClosure, "")
	if !c.authenticate() {
		return
	}
	c.s.wg.Add(1)
	go c.writeLoop()
	defer c.uncorkAll()
	for {
		if len(c.corkedDsts) > 0 && (c.br == nil || c.br.Buffered() == 0) {
			c.uncorkAll() // the burst is over; about to block on the socket
		}
		b, binary, err := c.readFrame(background())
		if err != nil {
			if errors.Is(err, errOversized) {
				c.s.metrics.BadFrames.Add(1)
				c.closeWith(websocket.StatusMessageTooBig, "frame too large")
			}
			return
		}
		if !binary {
			if !c.badFrame("text message") {
				return
			}
			continue
		}
		t, p, err := frame.ParseHeader(b)
		if errors.Is(err, frame.ErrUnknownType) {
			if !c.badFrame("unknown frame type") {
				return
			}
			continue
		}
		if err != nil {
			c.malformed(err)
			return
		}
		switch t {
		case frame.TypeTransport:
			if len(p) < frame.KeyLen {
				c.malformed(frame.ErrShort)
				return
			}
			c.forward(b)
		case frame.TypePing:
			data, err := frame.ParsePing(p)
			if err != nil {
				c.malformed(err)
				return
			}
			buf := c.s.bufs().Get(frame.HeaderLen + len(data))
			*buf = frame.AppendPing(*buf, frame.TypePong, data)
			c.enqueue(buf)
		case frame.TypePong:
		case frame.TypeClose:
			return
		default: // auth again, auth-ok, error: not for a server
			if !c.badFrame("unexpected " + t.String() + " frame") {
				return
			}
		}
	}
}

// authenticate reads and verifies the auth frame, registers the peer and
// answers auth-ok. It reports whether the connection may proceed.
func (c *conn) authenticate() bool {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.AuthTimeout)
	defer cancel()
	b, binary, err := c.readFrame(ctx)
	if err != nil {
		c.log.Debug("relay auth read failed", "err", err)
		return false
	}
	t, p, err := frame.ParseHeader(b)
	if err == nil && (!binary || t != frame.TypeAuth) {
		err = errors.New("first frame is not auth")
	}
	var peer keys.Public
	var token string
	if err == nil {
		peer, token, err = frame.ParseAuth(p)
	}
	if err == nil {
		err = auth.Verify(c.s.cfg.Secret, token, peer, c.s.cfg.Now())
	}
	if err != nil {
		c.s.metrics.AuthFailed.Add(1)
		c.log.Info("relay auth refused", "peer", peer.Short(), "err", err)
		msg := frame.AppendError(nil, frame.CodeAuth, peer, "auth refused: "+err.Error())
		c.ws.Write(ctx, websocket.MessageBinary, msg)
		c.closeWith(websocket.StatusPolicyViolation, "auth refused")
		return false
	}
	c.peer = peer
	c.seq = c.s.authSeq.Add(1)
	c.log = c.log.With("peer", peer.Short())
	// auth-ok goes out before the peer becomes reachable, so it is always
	// the first frame the client reads. A client may therefore open a
	// newer connection before this one is registered; seq keeps the newer
	// one the winner whichever registers first.
	if err := c.ws.Write(ctx, websocket.MessageBinary, frame.AppendAuthOK(nil, c.s.cfg.InstanceURL)); err != nil {
		return false
	}
	if !c.s.register(c) {
		return false
	}
	c.log.Debug("relay peer connected")
	return true
}

// forward delivers a transport frame (b, read into rbuf) to its destination,
// rewriting the destination key into the source key.
func (c *conn) forward(b []byte) {
	var dst keys.Public
	copy(dst[:], b[frame.HeaderLen:frame.TransportLen])
	d := c.s.lookup(dst)
	if d == nil || d == c {
		c.unreachable(dst)
		return
	}
	copy(b[frame.HeaderLen:frame.TransportLen], c.peer[:])
	if d.writeInline(b, c) {
		c.s.metrics.Forwarded.Add(1)
		c.s.metrics.ForwardedBytes.Add(int64(len(b) - frame.TransportLen))
		return
	}
	buf := c.s.bufs().Get(len(b))
	*buf = append(*buf, b...)
	if d.enqueue(buf) {
		c.s.metrics.Forwarded.Add(1)
		c.s.metrics.ForwardedBytes.Add(int64(len(b) - frame.TransportLen))
	} else {
		c.s.metrics.Dropped.Add(1)
	}
}

// inlineSlow is how long a write may take before the connection counts as
// congested; congestionHold is how long its deliveries then go through the
// queue only.
const (
	inlineSlow     = time.Millisecond
	congestionHold = 100 * time.Millisecond
)

// writeInline writes b to the websocket from the caller's goroutine when
// nothing is queued and no other write is in progress: the common case on an
// uncongested connection, saving two goroutine hand-offs per packet. A write
// that was slow marks the connection congested for a while, so a slow reader
// cannot stall its senders' read loops for long. It reports whether b was
// written (or the connection failed); false means "enqueue instead".
func (c *conn) writeInline(b []byte, src *conn) bool {
	if len(c.out) != 0 {
		return false
	}
	start := time.Now()
	if start.UnixNano() < c.slowUntil.Load() || !c.wmu.TryLock() {
		return false
	}
	if c.cc != nil && src.br != nil && src.br.Buffered() > 0 && c.cc.Cork() {
		src.corkedDsts = append(src.corkedDsts, c)
	}
	err := c.ws.Write(background(), websocket.MessageBinary, b)
	c.wmu.Unlock()
	if d := time.Since(start); d > inlineSlow {
		c.slowUntil.Store(start.Add(d + congestionHold).UnixNano())
	}
	if err != nil {
		c.closeWith(websocket.StatusInternalError, "write failed")
	}
	return true
}

// unreachable tells the sender that dst is not connected here: at most once
// per second per destination and UnreachableRate per second overall.
func (c *conn) unreachable(dst keys.Public) {
	c.s.metrics.Unreachable.Add(1)
	now := time.Now()
	if last, ok := c.unreachSeen[dst]; ok && now.Sub(last) < time.Second {
		return
	}
	if !c.unreach.AllowN(now, 1) {
		return
	}
	if len(c.unreachSeen) >= 1024 {
		clear(c.unreachSeen)
	}
	c.unreachSeen[dst] = now
	buf := c.s.bufs().Get(frame.SmallBuf)
	*buf = frame.AppendError(*buf, frame.CodeUnreachable, dst, "peer not connected to this relay instance")
	c.enqueue(buf)
}

// uncorkAll flushes every connection this read goroutine corked.
func (c *conn) uncorkAll() {
	for i, d := range c.corkedDsts {
		if err := d.cc.Uncork(); err != nil {
			d.closeWith(websocket.StatusInternalError, "write failed")
		}
		c.corkedDsts[i] = nil
	}
	c.corkedDsts = c.corkedDsts[:0]
}

// badFrame counts a frame the relay ignores; past the allowed rate the
// connection is closed. It reports whether the connection stays open.
func (c *conn) badFrame(why string) bool {
	c.s.metrics.BadFrames.Add(1)
	if c.bad.Allow() {
		return true
	}
	c.log.Info("relay closing connection: too many bad frames", "last", why)
	c.closeWith(websocket.StatusPolicyViolation, "too many bad frames")
	return false
}

// malformed closes the connection after a frame that does not decode.
func (c *conn) malformed(err error) {
	c.s.metrics.BadFrames.Add(1)
	c.log.Info("relay closing connection: malformed frame", "err", err)
	c.closeWith(websocket.StatusPolicyViolation, "malformed frame")
}

// enqueue hands buf to the write goroutine without blocking; a full queue
// drops the frame (the pool takes buf back).
func (c *conn) enqueue(buf *[]byte) bool {
	select {
	case <-c.done:
	case c.out <- buf:
		return true
	default:
	}
	c.s.bufs().Put(buf)
	return false
}

func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	pool := c.s.bufs()
	for {
		select {
		case <-c.done:
			return
		case buf := <-c.out:
			c.wmu.Lock()
			if c.cc != nil && len(c.out) > 0 {
				c.cc.Cork() // more queued: coalesce until drained
			}
			err := c.ws.Write(background(), websocket.MessageBinary, *buf)
			if err == nil && c.cc != nil && len(c.out) == 0 {
				err = c.cc.Uncork()
			}
			c.wmu.Unlock()
			pool.Put(buf)
			if err != nil {
				c.closeWith(websocket.StatusInternalError, "write failed")
				return
			}
		}
	}
}

// initialReadBuf is the starting read buffer of a connection; it grows (up to
// frame.MaxFrame+1) only when a larger frame arrives, so idle connections
// stay small.
const initialReadBuf = 4 << 10

func growBuf(b []byte, n int) []byte {
	nb := make([]byte, min(2*len(b), frame.MaxFrame+1))
	copy(nb, b[:n])
	return nb
}
