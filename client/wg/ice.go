package wg

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// stunMagicCookie is the RFC 5389 magic cookie (bytes 4..8 of every STUN message).
const stunMagicCookie = 0x2112A442

// IsSTUN reports whether pkt is a STUN message: at least a 20-byte header,
// the two top bits zero, the magic cookie at bytes 4..8, and a length field
// (bytes 2..4, a multiple of 4) equal to the bytes that follow the header.
// The length check makes confusion with WireGuard impossible: every
// WireGuard message has zeros in bytes 2..4 and is at least 32 bytes long.
func IsSTUN(pkt []byte) bool {
	if len(pkt) < 20 || pkt[0]&0xC0 != 0 {
		return false
	}
	if binary.BigEndian.Uint32(pkt[4:8]) != stunMagicCookie {
		return false
	}
	l := int(binary.BigEndian.Uint16(pkt[2:4]))
	return l%4 == 0 && l == len(pkt)-20
}

func (b *Bind) deliverICE(pkt []byte, from netip.AddrPort) {
	c := b.ice.Load()
	if c == nil {
		b.iceDropped.Add(1)
		return
	}
	p := b.getBuf(len(pkt))
	copy(p.b, pkt)
	p.ap = from
	select {
	case c.q <- p:
	default:
		b.putBuf(p)
		b.iceDropped.Add(1)
	}
}

// ICEConn returns the net.PacketConn through which ICE (pion/ice's
// UDPMuxDefault) shares the bind's socket: reads yield the STUN packets the
// socket received, writes go out of the same socket. The facade outlives
// Close/Open cycles of the bind. Closing it detaches it; the next ICEConn
// call then returns a fresh facade. Call it after the device is up so that
// LocalAddr reports the bound port. It also implements pion's
// AddrPortReaderWriter (ReadFromAddrPort/WriteToAddrPort) to avoid
// allocations.
func (b *Bind) ICEConn() net.PacketConn {
	for {
		if c := b.ice.Load(); c != nil {
			return c
		}
		c := &iceConn{b: b, q: make(chan *pktBuf, b.cfg.ICEQueue), closed: make(chan struct{})}
		c.rd.init()
		if b.ice.CompareAndSwap(nil, c) {
			return c
		}
	}
}

type iceConn struct {
	b         *Bind
	q         chan *pktBuf
	closed    chan struct{}
	closeOnce sync.Once
	rd        deadline
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Unwrap() error   { return os.ErrDeadlineExceeded }

// ReadFromAddrPort reads the next STUN packet.
func (c *iceConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	select {
	case <-c.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	default:
	}
	select {
	case pb := <-c.q:
		n := copy(p, pb.b[:pb.n])
		ap := pb.ap
		c.b.putBuf(pb)
		return n, ap, nil
	case <-c.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	case <-c.rd.wait():
		return 0, netip.AddrPort{}, timeoutError{}
	}
}

// ReadFrom implements net.PacketConn.
func (c *iceConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, ap, err := c.ReadFromAddrPort(p)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(ap), nil
}

// WriteToAddrPort sends p from the bind's socket.
func (c *iceConn) WriteToAddrPort(p []byte, ap netip.AddrPort) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	s := c.b.sess.Load()
	if s == nil {
		return 0, net.ErrClosed
	}
	if c.b.blockedAddr(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())) {
		return len(p), nil
	}
	return s.conn.WriteToUDPAddrPort(p, ap)
}

// WriteTo implements net.PacketConn.
func (c *iceConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errors.New("ice conn: not a UDP address")
	}
	return c.WriteToAddrPort(p, ua.AddrPort())
}

// Close detaches the facade from the bind (the socket stays open).
func (c *iceConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.b.ice.CompareAndSwap(c, nil)
		for {
			select {
			case pb := <-c.q:
				c.b.putBuf(pb)
			default:
				return
			}
		}
	})
	return nil
}

// LocalAddr returns the bind's current (or last) local address.
func (c *iceConn) LocalAddr() net.Addr {
	if la := c.b.LocalAddr(); la != nil {
		return la
	}
	return &net.UDPAddr{IP: net.IPv6unspecified}
}

// SetDeadline sets the read deadline (writes never block for long on UDP).
func (c *iceConn) SetDeadline(t time.Time) error { c.rd.set(t); return nil }

// SetReadDeadline sets the read deadline.
func (c *iceConn) SetReadDeadline(t time.Time) error { c.rd.set(t); return nil }

// SetWriteDeadline is accepted and ignored: a UDP write does not block on the peer.
func (c *iceConn) SetWriteDeadline(time.Time) error { return nil }

// deadline is a resettable timer whose channel closes when it expires.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	c     chan struct{}
}

func (d *deadline) init() { d.c = make(chan struct{}) }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	select {
	case <-d.c:
		d.c = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.c)
		return
	}
	c := d.c
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.c == c {
			select {
			case <-c:
			default:
				close(c)
			}
		}
	})
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.c
}
