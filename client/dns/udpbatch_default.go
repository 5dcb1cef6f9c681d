//go:build !linux

package dns

import (
	"net"
	"net/netip"
)

// batchConn is a UDP reader's socket where there is no recvmmsg: a batch
// is one datagram, read and answered with the net package.
type batchConn struct {
	c     *net.UDPConn
	buf   []byte
	n     int
	from  netip.AddrPort
	reply []byte // queued reply to from, or nil
}

// newBatchConn prepares c for batches of (here) one datagram of up to
// size bytes.
func newBatchConn(c *net.UDPConn, _, size int) (*batchConn, error) {
	return &batchConn{c: c, buf: make([]byte, size)}, nil
}

// read blocks until a datagram arrives and reads it. It drops a reply
// still queued.
func (b *batchConn) read() (int, error) {
	b.reply = nil
	var err error
	if b.n, b.from, err = b.c.ReadFromUDPAddrPort(b.buf); err != nil {
		return 0, err
	}
	return 1, nil
}

// datagram returns the datagram read (valid until the next read).
func (b *batchConn) datagram(int) []byte { return b.buf[:b.n] }

// sender returns the address it came from.
func (b *batchConn) sender(int) netip.AddrPort { return b.from }

// queue queues reply p (kept until flush) to the sender.
func (b *batchConn) queue(_ int, p []byte) { b.reply = p }

// flush sends the queued reply.
func (b *batchConn) flush() error {
	p := b.reply
	b.reply = nil
	if p == nil {
		return nil
	}
	_, err := b.c.WriteToUDPAddrPort(p, b.from)
	return err
}

// udpBatch: one datagram at a time.
const udpBatch = 1
