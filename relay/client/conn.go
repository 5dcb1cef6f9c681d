package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"petrel/internal/keys"
	"petrel/relay/frame"
	"petrel/relay/internal/cork"
)

// conn is one authenticated WebSocket to a relay instance. Send goroutines
// enqueue; the write goroutine drains the queue and sends keepalives; the
// read goroutine (run's caller) dispatches incoming frames.
type conn struct {
	c        *Client
	url      string // as dialed
	foreign  bool
	instance string          // from auth-ok; set before the conn is published
	ws       *websocket.Conn // set by dial before run; never changes
	cc       *cork.Conn      // the socket under ws (nil if the transport did not dial it)
	wsp      atomic.Pointer[websocket.Conn]

	out         chan *[]byte
	wmu         sync.Mutex   // serializes websocket writes (write goroutine vs inline Send)
	slowUntil   atomic.Int64 // unix nanos; while in the future, Send only queues
	done        chan struct{}
	closeOnce   sync.Once
	wsCloseOnce sync.Once
	lastRead    atomic.Int64 // unix nanos, any frame
	lastUse     atomic.Int64 // unix nanos, transport in either direction (foreign idle)

	rbuf []byte
}

func (c *Client) newConn(url string, foreign bool) *conn {
	cn := &conn{
		c: c, url: url, foreign: foreign,
		out:  make(chan *[]byte, c.cfg.SendQueue),
		done: make(chan struct{}),
	}
	cn.touch()
	return cn
}

func (cn *conn) touch() {
	if cn.foreign {
		cn.lastUse.Store(time.Now().UnixNano())
	}
}

// dial connects and authenticates.
func (cn *conn) dial(parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, cn.c.cfg.DialTimeout)
	defer cancel()
	u, err := wsURL(cn.url)
	if err != nil {
		return err
	}
	token := cn.c.cfg.Token()
	if token == "" {
		return ErrNoToken
	}
	slot := new(atomic.Pointer[cork.Conn])
	ctx = context.WithValue(ctx, corkSlot{}, slot)
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPClient:      cn.c.http,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return fmt.Errorf("dial relay %s: %w", cn.url, err)
	}
	ws.SetReadLimit(frame.MaxFrame + 1)
	fail := func(err error) error {
		ws.CloseNow()
		return err
	}
	if err := ws.Write(ctx, websocket.MessageBinary, frame.AppendAuth(nil, cn.c.cfg.Key, token)); err != nil {
		return fail(fmt.Errorf("send relay auth: %w", err))
	}
	_, b, err := ws.Read(ctx)
	if err != nil {
		return fail(fmt.Errorf("read relay auth reply: %w", err))
	}
	f, err := frame.Decode(b)
	if err != nil {
		return fail(fmt.Errorf("decode relay auth reply: %w", err))
	}
	switch f.Type {
	case frame.TypeAuthOK:
	case frame.TypeError:
		return fail(fmt.Errorf("%w: %s", ErrAuthRefused, f.Text))
	default:
		return fail(fmt.Errorf("decode relay auth reply: unexpected %s frame", f.Type))
	}
	cn.instance = f.URL
	cn.ws = ws
	cn.cc = slot.Load()
	cn.wsp.Store(ws)
	cn.rbuf = make([]byte, initialReadBuf)
	cn.lastRead.Store(time.Now().UnixNano())
	return nil
}

// run serves an authenticated connection until it ends.
func (cn *conn) run() {
	cn.c.wg.Add(1)
	go cn.writeLoop()
	defer cn.close()
	for {
		b, err := cn.readFrame()
		if err != nil {
			if cn.c.ctx.Err() == nil {
				cn.c.log.Debug("relay connection ended", "instance", cn.instance, "err", err)
			}
			return
		}
		t, p, err := frame.ParseHeader(b)
		if errors.Is(err, frame.ErrUnknownType) {
			continue // newer relay; ignore
		}
		if err != nil {
			cn.c.log.Warn("relay sent malformed frame", "instance", cn.instance, "err", err)
			return
		}
		switch t {
		case frame.TypeTransport:
			src, pkt, err := frame.ParseTransport(p)
			if err != nil {
				return
			}
			cn.touch()
			if r := cn.c.recv.Load(); r != nil && *r != nil {
				(*r)(src, cn.instance, pkt)
			}
		case frame.TypePing:
			data, err := frame.ParsePing(p)
			if err != nil {
				return
			}
			buf := cn.c.pool.Get(frame.HeaderLen + len(data))
			*buf = frame.AppendPing(*buf, frame.TypePong, data)
			cn.enqueue(buf)
		case frame.TypeError:
			code, peer, msg, err := frame.ParseError(p)
			if err != nil {
				return
			}
			if code == frame.CodeUnreachable {
				if f := cn.c.unreachable.Load(); f != nil && *f != nil {
					(*f)(peer, cn.instance)
				}
				continue
			}
			cn.c.log.Info("relay error", "instance", cn.instance, "code", code, "msg", msg)
		case frame.TypeClose:
			return
		}
	}
}

func (cn *conn) readFrame() ([]byte, error) {
	_, r, err := cn.ws.Reader(context.Background())
	if err != nil {
		return nil, err
	}
	n := 0
	for {
		if n == len(cn.rbuf) {
			cn.rbuf = growBuf(cn.rbuf, n)
		}
		m, err := r.Read(cn.rbuf[n:])
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if n > frame.MaxFrame {
			return nil, errors.New("relay frame too large")
		}
	}
	cn.lastRead.Store(time.Now().UnixNano())
	return cn.rbuf[:n], nil
}

// writeLoop sends queued frames, keepalive pings, and closes the connection
// when the relay went silent or a foreign connection went idle.
func (cn *conn) writeLoop() {
	defer cn.c.wg.Done()
	cfg := &cn.c.cfg
	tick := cfg.PingInterval / 5
	if cn.foreign && cfg.ForeignIdleTimeout/4 < tick {
		tick = cfg.ForeignIdleTimeout / 4
	}
	tick = max(tick, 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	lastPing := time.Now()
	var seq uint64
	for {
		select {
		case <-cn.done:
			cn.closeWS()
			return
		case buf := <-cn.out:
			cn.wmu.Lock()
			if cn.cc != nil && len(cn.out) > 0 {
				cn.cc.Cork() // more queued: coalesce until drained
			}
			err := cn.ws.Write(context.Background(), websocket.MessageBinary, *buf)
			if err == nil && cn.cc != nil && len(cn.out) == 0 {
				err = cn.cc.Uncork()
			}
			cn.wmu.Unlock()
			cn.c.pool.Put(buf)
			if err != nil {
				cn.close()
				return
			}
		case now := <-t.C:
			if cn.foreign && now.Sub(time.Unix(0, cn.lastUse.Load())) > cfg.ForeignIdleTimeout {
				cn.c.log.Debug("relay foreign connection idle", "instance", cn.instance)
				cn.close()
				return
			}
			if now.Sub(time.Unix(0, cn.lastRead.Load())) > 3*cfg.PingInterval {
				cn.c.log.Info("relay connection silent; closing", "instance", cn.instance)
				cn.close()
				return
			}
			if now.Sub(lastPing) >= cfg.PingInterval {
				lastPing = now
				seq++
				var data [8]byte
				for i := range data {
					data[i] = byte(seq >> (8 * i))
				}
				cn.wmu.Lock()
				err := cn.ws.Write(context.Background(), websocket.MessageBinary, frame.AppendPing(nil, frame.TypePing, data[:]))
				cn.wmu.Unlock()
				if err != nil {
					cn.close()
					return
				}
			}
		}
	}
}

// Inline writes: a write slower than inlineSlow marks the connection
// congested for congestionHold, during which Send only queues, so a stalled
// relay cannot hold the caller (WireGuard's send path) for long.
const (
	inlineSlow     = time.Millisecond
	congestionHold = 100 * time.Millisecond
)

// send writes buf from the caller's goroutine when the connection is up,
// nothing is queued and no other write is in progress (the common case,
// saving a goroutine hand-off per packet); otherwise it queues buf.
func (cn *conn) send(buf *[]byte) error {
	if !cn.lockInline() {
		return cn.enqueueErr(buf)
	}
	start := time.Now()
	err := cn.ws.Write(context.Background(), websocket.MessageBinary, *buf)
	cn.unlockInline(start, err)
	cn.c.pool.Put(buf)
	if err != nil {
		return ErrNotConnected
	}
	return nil
}

// enqueueErr is enqueue with Send's error.
func (cn *conn) enqueueErr(buf *[]byte) error {
	if cn.enqueue(buf) {
		return nil
	}
	select {
	case <-cn.done:
		return ErrNotConnected
	default:
		return ErrQueueFull
	}
}

// sendBatch is send for several packets to one destination, corked into one
// socket write.
func (cn *conn) sendBatch(dst keys.Public, pkts [][]byte) error {
	if !cn.lockInline() {
		var first error
		for _, p := range pkts {
			buf := cn.c.pool.Get(frame.TransportLen + len(p))
			*buf = frame.AppendTransport(*buf, dst, p)
			if err := cn.enqueueErr(buf); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	start := time.Now()
	corked := cn.cc != nil && len(pkts) > 1 && cn.cc.Cork()
	buf := cn.c.pool.Get(frame.SmallBuf)
	var err error
	for _, p := range pkts {
		*buf = frame.AppendTransport((*buf)[:0], dst, p)
		if err = cn.ws.Write(context.Background(), websocket.MessageBinary, *buf); err != nil {
			break
		}
	}
	if corked {
		if uerr := cn.cc.Uncork(); err == nil {
			err = uerr
		}
	}
	cn.c.pool.Put(buf)
	cn.unlockInline(start, err)
	if err != nil {
		return ErrNotConnected
	}
	return nil
}

// lockInline takes the write lock for an inline write if the connection is
// up, uncongested, has nothing queued and nobody else is writing.
func (cn *conn) lockInline() bool {
	if cn.wsp.Load() == nil || len(cn.out) != 0 {
		return false
	}
	if time.Now().UnixNano() < cn.slowUntil.Load() || !cn.wmu.TryLock() {
		return false
	}
	select {
	case <-cn.done:
		cn.wmu.Unlock()
		return false
	default:
		return true
	}
}

func (cn *conn) unlockInline(start time.Time, err error) {
	cn.wmu.Unlock()
	if d := time.Since(start); d > inlineSlow {
		cn.slowUntil.Store(start.Add(d + congestionHold).UnixNano())
	}
	if err != nil {
		cn.close()
	}
}

// enqueue queues buf for the write goroutine without blocking.
func (cn *conn) enqueue(buf *[]byte) bool {
	select {
	case <-cn.done:
	case cn.out <- buf:
		return true
	default:
	}
	cn.c.pool.Put(buf)
	return false
}

// close ends the connection; safe to call at any time, also before dial
// finished (run then closes the socket as soon as it starts).
func (cn *conn) close() {
	cn.closeOnce.Do(func() { close(cn.done) })
	cn.closeWS()
}

// closeWS runs the close handshake once, in the background (tracked by the
// client's WaitGroup).
func (cn *conn) closeWS() {
	ws := cn.wsp.Load()
	if ws == nil {
		return
	}
	cn.wsCloseOnce.Do(func() {
		cn.c.wg.Add(1)
		go func() {
			defer cn.c.wg.Done()
			ws.Close(websocket.StatusNormalClosure, "")
		}()
	})
}

// drop releases frames still queued on a dead connection.
func (cn *conn) drop() {
	for {
		select {
		case buf := <-cn.out:
			cn.c.pool.Put(buf)
		default:
			return
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
