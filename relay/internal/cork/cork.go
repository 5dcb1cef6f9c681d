// Package cork coalesces socket writes. The websocket library flushes one
// socket write per message; on the relay's data path a syscall per packet is
// most of the CPU cost. A Conn can be corked while a burst is being written:
// writes then accumulate and go out in one syscall on Uncork (or when
// MaxCorked bytes are held).
//
// Who may import it: relay and relay/client only. Threading: Write, Cork and
// Uncork are safe for concurrent use; each Write is atomic with respect to
// flushes, so frames written by different goroutines never interleave. Read
// is for a single reader goroutine.
package cork

import (
	"net"
	"sync"
)

// MaxCorked bounds the bytes held back before a forced flush.
const MaxCorked = 60 << 10

// Conn wraps a net.Conn. Read returns Prefix first (bytes a server had
// already buffered before handing the connection over), then reads through.
type Conn struct {
	net.Conn
	Prefix []byte

	mu      sync.Mutex
	corked  bool
	pending []byte
	failed  error
}

// New wraps nc.
func New(nc net.Conn) *Conn { return &Conn{Conn: nc} }

func (cc *Conn) Read(p []byte) (int, error) {
	if len(cc.Prefix) > 0 {
		n := copy(p, cc.Prefix)
		cc.Prefix = cc.Prefix[n:]
		return n, nil
	}
	return cc.Conn.Read(p)
}

func (cc *Conn) Write(p []byte) (int, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.failed != nil {
		return 0, cc.failed
	}
	if cc.corked {
		cc.pending = append(cc.pending, p...)
		if len(cc.pending) < MaxCorked {
			return len(p), nil
		}
		return len(p), cc.flushLocked()
	}
	return cc.Conn.Write(p)
}

// Cork starts holding writes back; it reports whether the connection was
// not corked yet (the caller then owns the duty to Uncork).
func (cc *Conn) Cork() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	was := cc.corked
	cc.corked = true
	return !was
}

// Uncork writes what was held back and stops holding.
func (cc *Conn) Uncork() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.corked = false
	return cc.flushLocked()
}

func (cc *Conn) flushLocked() error {
	if len(cc.pending) == 0 || cc.failed != nil {
		cc.pending = cc.pending[:0]
		return cc.failed
	}
	_, err := cc.Conn.Write(cc.pending)
	if cap(cc.pending) > 4*MaxCorked {
		cc.pending = nil
	} else {
		cc.pending = cc.pending[:0]
	}
	if err != nil {
		cc.failed = err
	}
	return err
}
