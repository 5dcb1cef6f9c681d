package dns

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchConn is a UDP reader's socket on Linux: recvmmsg and sendmmsg on
// the socket's RawConn, so the Go poller still does the waiting and Close
// still unblocks a read.
//
// The syscalls are raw (no entersyscall): on a non-blocking socket they
// never block, and a plain syscall made while every P is idle, which is
// each query's first at a low rate, wakes the runtime's sysmon thread,
// which costs two more context switches and a futex round trip per query.
// A send of more than rawSendMax datagrams, which happens only under load
// (when sysmon is awake anyway), takes the ordinary path so that a long
// batch does not hold its P unpreemptibly.
//
// Replies reuse the sender's address as the kernel returned it (the read
// slot's sockaddr), so nothing is parsed or built on the way out.
type batchConn struct {
	rc    syscall.RawConn
	bufs  [][]byte                         // read buffers, one per slot
	names [][unix.SizeofSockaddrInet6]byte // senders, one per slot (v4 fits too)
	rhs   []unix.Mmsghdr                   // read headers, one per slot
	riov  []unix.Iovec                     // read iovecs, one per slot
	whs   []unix.Mmsghdr                   // queued replies
	wiov  []unix.Iovec                     // their iovecs
	nr    int                              // datagrams in the last read
	nq    int                              // replies queued
	wfrom int                              // first reply the next sendmmsg sends
	n     int                              // result of the last syscall
	errno syscall.Errno                    // error of the last syscall
	recvF func(fd uintptr) bool            // b.recv, bound once
	sendF func(fd uintptr) bool            // b.send, bound once
}

// rawSendMax is the largest reply batch sent with a raw syscall.
const rawSendMax = 4

// newBatchConn prepares c for batches of up to n datagrams of up to size
// bytes each.
func newBatchConn(c *net.UDPConn, n, size int) (*batchConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("batch conn: %w", err)
	}
	b := &batchConn{
		rc: rc, bufs: make([][]byte, n), names: make([][unix.SizeofSockaddrInet6]byte, n),
		rhs: make([]unix.Mmsghdr, n), riov: make([]unix.Iovec, n),
		whs: make([]unix.Mmsghdr, n), wiov: make([]unix.Iovec, n),
	}
	for i := range b.rhs {
		b.bufs[i] = make([]byte, size)
		b.riov[i].Base = &b.bufs[i][0]
		b.riov[i].SetLen(size)
		b.rhs[i].Hdr.Iov = &b.riov[i]
		b.rhs[i].Hdr.SetIovlen(1)
		b.rhs[i].Hdr.Name = &b.names[i][0]
		b.rhs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		b.whs[i].Hdr.Iov = &b.wiov[i]
		b.whs[i].Hdr.SetIovlen(1)
	}
	b.recvF, b.sendF = b.recv, b.send
	return b, nil
}

// read blocks until a datagram is queued and reads as many as are queued,
// up to the slots. It drops replies still queued.
func (b *batchConn) read() (int, error) {
	for i := 0; i < b.nr; i++ {
		b.rhs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
	}
	b.nr, b.nq = 0, 0
	if err := b.rc.Read(b.recvF); err != nil {
		return 0, err
	}
	if b.errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", b.errno)
	}
	b.nr = b.n
	return b.n, nil
}

func (b *batchConn) recv(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rhs[0])), uintptr(len(b.rhs)), 0, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait in the poller
		}
		b.n, b.errno = int(n), e
		return true
	}
}

// datagram returns read datagram i (valid until the next read).
func (b *batchConn) datagram(i int) []byte { return b.bufs[i][:b.rhs[i].Len] }

// sender returns the address read datagram i came from.
func (b *batchConn) sender(i int) netip.AddrPort {
	sa := b.names[i][:]
	port := binary.BigEndian.Uint16(sa[2:])
	switch binary.NativeEndian.Uint16(sa) {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port)
	case unix.AF_INET6:
		a := netip.AddrFrom16([16]byte(sa[8:24]))
		if scope := binary.NativeEndian.Uint32(sa[24:]); scope != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(scope), 10))
		}
		return netip.AddrPortFrom(a, port)
	}
	return netip.AddrPort{}
}

// queue queues reply p (non-empty; kept until flush) to the sender of read
// datagram i.
func (b *batchConn) queue(i int, p []byte) {
	w := &b.whs[b.nq]
	b.wiov[b.nq].Base = &p[0]
	b.wiov[b.nq].SetLen(len(p))
	w.Hdr.Name = &b.names[i][0]
	w.Hdr.Namelen = b.rhs[i].Hdr.Namelen
	b.nq++
}

// flush sends the queued replies with as few sendmmsg calls as it can. A
// reply that fails is dropped and the rest still go; the last such error
// is returned (or the socket's closing, which ends the flush).
func (b *batchConn) flush() error {
	var last error
	for b.wfrom = 0; b.wfrom < b.nq; {
		if err := b.rc.Write(b.sendF); err != nil {
			b.nq = 0
			return err
		}
		if b.errno != 0 {
			last = os.NewSyscallError("sendmmsg", b.errno)
			b.n = 1 // the first of the batch failed: drop it
		}
		b.wfrom += max(b.n, 1)
	}
	b.nq = 0
	return last
}

func (b *batchConn) send(fd uintptr) bool {
	hs := b.whs[b.wfrom:b.nq]
	for {
		var n uintptr
		var e syscall.Errno
		if len(hs) <= rawSendMax {
			n, _, e = unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&hs[0])), uintptr(len(hs)), 0, 0, 0)
		} else {
			n, _, e = unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&hs[0])), uintptr(len(hs)), 0, 0, 0)
		}
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // the send buffer is full: wait in the poller
		}
		b.n, b.errno = int(n), e
		return true
	}
}

// udpBatch is the most datagrams one recvmmsg reads (and one sendmmsg
// answers).
const udpBatch = 32
