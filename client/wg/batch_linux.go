//go:build linux

package wg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux datagram I/O: raw sendmmsg/recvmmsg on the bind's socket with
// preallocated headers, iovecs, socket addresses and control buffers (no
// allocation per packet), UDP GSO on send and UDP GRO on receive.
//
// Send: consecutive packets of one Send call (all to one endpoint) of the
// same size, where only the last of a run may be shorter, go out as one
// datagram whose iovec is the run of caller buffers itself (no copy) and
// whose UDP_SEGMENT control message tells the kernel the segment size. The
// kernel (or the NIC) cuts it into ordinary datagrams; on a veth pair the
// super-datagram crosses unsegmented to a GRO-enabled receiver.
//
// Receive: with UDP_GRO on, one read can return a super-datagram of up to
// 64 same-size datagrams from one source (the last may be shorter) plus a
// UDP_GRO control message carrying the segment size. One recvmmsg reads up
// to groReads datagrams into the reader's own 64 KiB buffers; their
// segments are then copied out into the caller's buffers, and what does not
// fit stays pending for the next call. Without GRO, recvmmsg reads straight
// into the caller's buffers.

const (
	// maxGSOSegments is the kernel's limit on segments per UDP GSO send
	// (UDP_MAX_SEGMENTS) and per GRO-coalesced receive.
	maxGSOSegments = 64
	// Payload limits of one (super-)datagram: IPv4 total length minus the
	// IP and UDP headers; IPv6's payload length excludes its own header.
	maxPayload4 = 1<<16 - 1 - 20 - 8
	maxPayload6 = 1<<16 - 1 - 8
	// groBufSize fits any super-datagram.
	groBufSize = 1 << 16
	// groReads is how many (super-)datagrams one recvmmsg reads with GRO
	// on: 8 × 64 KiB of buffers per receive goroutine.
	groReads = 8
)

var cmsgSegSpace = unix.CmsgSpace(2) // UDP_SEGMENT carries a uint16
var cmsgGROSpace = unix.CmsgSpace(4) // UDP_GRO carries an int

// mmsghdr is struct mmsghdr; Go's struct layout matches C's on every Linux
// architecture (msg_len follows the msghdr, padded to its alignment).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// sockIO is the per-session datagram I/O of one socket.
type sockIO struct {
	log   *slog.Logger
	rc    syscall.RawConn
	v6    bool        // AF_INET6 socket (IPv4 peers as v4-mapped addresses)
	txGSO atomic.Bool // UDP_SEGMENT usable; cleared on EIO
	rxGRO bool        // UDP_GRO enabled on the socket
	send  sync.Pool   // *sendState

	// gsoSent counts segmented datagrams sent, groRecv coalesced ones
	// received (diagnostics and tests).
	gsoSent, groRecv atomic.Uint64
	// fault, when set (tests only, before any traffic), can fail a
	// sendmmsg with an errno.
	fault func(hdrs []mmsghdr) syscall.Errno
}

// offloadSupport reports what the kernel offers on the socket and enables
// GRO when asked: GSO if UDP_SEGMENT can be read back, GRO if UDP_GRO can be
// switched on.
func offloadSupport(rc syscall.RawConn, enable bool) (gso, gro bool) {
	if !enable {
		return false, false
	}
	_ = rc.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		gso = err == nil
		if unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil {
			v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO)
			gro = err == nil && v == 1
		}
	})
	return gso, gro
}

func newSockIO(uc *net.UDPConn, offload bool, log *slog.Logger) (*sockIO, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	var domain int
	if err := rc.Control(func(fd uintptr) {
		domain, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil {
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("read socket domain: %w", err)
	}
	s := &sockIO{log: log, rc: rc, v6: domain == unix.AF_INET6}
	gso, gro := offloadSupport(rc, offload)
	s.txGSO.Store(gso)
	s.rxGRO = gro
	s.send.New = func() any { return newSendState(s) }
	log.Debug("udp offload", "gso", gso, "gro", gro)
	return s, nil
}

// offloads reports whether GSO and GRO are in use.
func (s *sockIO) offloads() (gso, gro bool) { return s.txGSO.Load(), s.rxGRO }

// sendState is the scratch of one sendmmsg batch; pooled.
type sendState struct {
	io    *sockIO
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	oob   []byte // cmsgSegSpace per header
	first []int  // index of the first packet of each header
	sa    unix.RawSockaddrInet6
	salen uint32
	// per-call arguments of the prebuilt write closure
	todo  []mmsghdr
	sent  int
	errno syscall.Errno
	write func(fd uintptr) bool
}

func newSendState(s *sockIO) *sendState {
	st := &sendState{io: s}
	st.write = st.doWrite
	return st
}

func (st *sendState) grow(n int) {
	if len(st.hdrs) >= n {
		return
	}
	st.hdrs = make([]mmsghdr, n)
	st.iovs = make([]unix.Iovec, n)
	st.oob = make([]byte, n*cmsgSegSpace)
	st.first = make([]int, n)
}

// setDst fills the destination socket address for ap in the socket's family.
func (st *sendState) setDst(ap netip.AddrPort) error {
	st.sa = unix.RawSockaddrInet6{}
	port := ap.Port()
	if !st.io.v6 {
		if !ap.Addr().Is4() {
			return fmt.Errorf("send to %s on an IPv4 socket: %w", ap, unix.EAFNOSUPPORT)
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&st.sa))
		sa4.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], port)
		sa4.Addr = ap.Addr().As4()
		st.salen = unix.SizeofSockaddrInet4
		return nil
	}
	st.sa.Family = unix.AF_INET6
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&st.sa.Port))[:], port)
	st.sa.Addr = ap.Addr().As16() // IPv4 becomes v4-mapped
	st.salen = unix.SizeofSockaddrInet6
	return nil
}

// build lays out bufs[from:] into headers, coalescing runs when gso is set,
// and returns the number of headers.
func (st *sendState) build(bufs [][]byte, from int, gso bool, maxPayload int) int {
	nh := 0
	for i := from; i < len(bufs); {
		size := len(bufs[i])
		j, total := i+1, size
		if gso {
			for j < len(bufs) && j-i < maxGSOSegments {
				l := len(bufs[j])
				if l > size || total+l > maxPayload {
					break
				}
				total += l
				j++
				if l < size {
					break // a shorter packet ends the run
				}
			}
		}
		for k := i; k < j; k++ {
			st.iovs[k].Base = unsafe.SliceData(bufs[k])
			st.iovs[k].SetLen(len(bufs[k]))
		}
		h := &st.hdrs[nh]
		*h = mmsghdr{}
		h.hdr.Name = (*byte)(unsafe.Pointer(&st.sa))
		h.hdr.Namelen = st.salen
		h.hdr.Iov = &st.iovs[i]
		h.hdr.SetIovlen(j - i)
		if j-i > 1 {
			oob := st.oob[nh*cmsgSegSpace : (nh+1)*cmsgSegSpace]
			ch := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
			ch.Level = unix.SOL_UDP
			ch.Type = unix.UDP_SEGMENT
			ch.SetLen(unix.CmsgLen(2))
			*(*uint16)(unsafe.Pointer(&oob[unix.CmsgLen(0)])) = uint16(size)
			h.hdr.Control = &oob[0]
			h.hdr.SetControllen(cmsgSegSpace)
		}
		st.first[nh] = i
		nh++
		i = j
	}
	return nh
}

func (st *sendState) doWrite(fd uintptr) bool {
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&st.todo[0])), uintptr(len(st.todo)), 0, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	st.sent, st.errno = int(r), e
	return true
}

// sendmmsg writes hdrs, looping over partial writes. On error it returns
// the index of the first header not sent.
func (st *sendState) sendmmsg(hdrs []mmsghdr) (int, error) {
	done := 0
	for done < len(hdrs) {
		if f := st.io.fault; f != nil {
			if e := f(hdrs[done:]); e != 0 {
				return done, os.NewSyscallError("sendmmsg", e)
			}
		}
		st.todo, st.errno = hdrs[done:], 0
		if err := st.io.rc.Write(st.write); err != nil {
			return done, err
		}
		if st.errno != 0 {
			return done, os.NewSyscallError("sendmmsg", st.errno)
		}
		if st.sent <= 0 {
			return done, io.ErrShortWrite
		}
		done += st.sent
	}
	return done, nil
}

func (st *sendState) clear(n int) {
	for i := range n {
		st.iovs[i].Base = nil
	}
	st.todo = nil
}

// sendTo writes bufs to ap with as few sendmmsg calls and datagrams as the
// kernel allows. On EIO from a GSO send (the route's device cannot
// checksum), GSO is switched off for the socket and the rest is resent
// unsegmented; EINVAL from a GSO send (segment larger than the path's
// fragment size) resends the rest of this call unsegmented.
func (s *sockIO) sendTo(bufs [][]byte, ap netip.AddrPort) error {
	if len(bufs) == 0 {
		return nil
	}
	st := s.send.Get().(*sendState)
	defer s.send.Put(st)
	st.grow(len(bufs))
	defer st.clear(len(bufs))
	if err := st.setDst(ap); err != nil {
		return err
	}
	maxPayload := maxPayload6
	if ap.Addr().Is4() {
		maxPayload = maxPayload4
	}
	gso := s.txGSO.Load()
	from := 0
	for {
		nh := st.build(bufs, from, gso, maxPayload)
		done, err := st.sendmmsg(st.hdrs[:nh])
		if gso && nh < len(bufs)-from {
			var segmented uint64
			for _, h := range st.hdrs[:done] {
				if h.hdr.Iovlen > 1 {
					segmented++
				}
			}
			s.gsoSent.Add(segmented)
		}
		if err == nil {
			return nil
		}
		var se *os.SyscallError
		if gso && errors.As(err, &se) && (se.Err == unix.EIO || se.Err == unix.EINVAL) {
			if se.Err == unix.EIO && s.txGSO.CompareAndSwap(true, false) {
				s.log.Warn("UDP GSO disabled: the kernel refused a segmented send", "err", err)
			}
			gso, from = false, st.first[done]
			continue
		}
		return err
	}
}

// recvState is one receive goroutine's scratch (wireguard-go calls each
// ReceiveFunc from a single goroutine).
type recvState struct {
	io    *sockIO
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []byte   // cmsgGROSpace per header (GRO only)
	gro   [][]byte // own buffers (GRO only)
	// pending GRO input: datagrams pend..got-1 of the last read, the
	// first of them consumed up to off.
	got, pend, off int
	// per-call arguments of the prebuilt read closure
	todo  []mmsghdr
	errno syscall.Errno
	read  func(fd uintptr) bool
}

func (s *sockIO) newReader() *recvState {
	r := &recvState{io: s}
	r.read = r.doRead
	if s.rxGRO {
		r.grow(groReads)
		r.oob = make([]byte, groReads*cmsgGROSpace)
		r.gro = make([][]byte, groReads)
		for i := range r.gro {
			r.gro[i] = make([]byte, groBufSize)
		}
	}
	return r
}

func (r *recvState) grow(n int) {
	if len(r.hdrs) >= n {
		return
	}
	r.hdrs = make([]mmsghdr, n)
	r.iovs = make([]unix.Iovec, n)
	r.names = make([]unix.RawSockaddrInet6, n)
}

func (r *recvState) doRead(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.todo[0])), uintptr(len(r.todo)), 0, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	r.got, r.errno = int(n), e
	return true
}

// recvmmsg reads up to len(bufs) datagrams into bufs (at most len(r.hdrs)),
// with control space when oob is set.
func (r *recvState) recvmmsg(bufs [][]byte, oob bool) (int, error) {
	for i, b := range bufs {
		r.iovs[i].Base = unsafe.SliceData(b)
		r.iovs[i].SetLen(len(b))
		h := &r.hdrs[i]
		*h = mmsghdr{}
		h.hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.hdr.Namelen = unix.SizeofSockaddrInet6
		h.hdr.Iov = &r.iovs[i]
		h.hdr.SetIovlen(1)
		if oob {
			h.hdr.Control = &r.oob[i*cmsgGROSpace]
			h.hdr.SetControllen(cmsgGROSpace)
		}
	}
	r.todo, r.errno, r.got = r.hdrs[:len(bufs)], 0, 0
	err := r.io.rc.Read(r.read)
	r.todo = nil
	if err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", r.errno)
	}
	return r.got, nil
}

// addr returns datagram i's source address (IPv4 unmapped).
func (r *recvState) addr(i int) netip.AddrPort {
	sa := &r.names[i]
	switch sa.Family {
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	}
	return netip.AddrPort{}
}

// segSize returns datagram i's GRO segment size, 0 if it was not coalesced.
func (r *recvState) segSize(i int) int {
	h := &r.hdrs[i].hdr
	ctl := r.oob[i*cmsgGROSpace : i*cmsgGROSpace+int(h.Controllen)]
	for len(ctl) >= unix.SizeofCmsghdr {
		ch, data, rest, err := unix.ParseOneSocketControlMessage(ctl)
		if err != nil {
			return 0
		}
		if ch.Level == unix.SOL_UDP && ch.Type == unix.UDP_GRO {
			switch {
			case len(data) >= 4:
				return int(*(*int32)(unsafe.Pointer(&data[0])))
			case len(data) >= 2:
				return int(*(*uint16)(unsafe.Pointer(&data[0])))
			}
		}
		ctl = rest
	}
	return 0
}

// recv fills bufs with received datagrams: sizes[i] and aps[i] for i < n.
// A zero size marks a slot to skip (truncated datagram).
func (r *recvState) recv(bufs [][]byte, sizes []int, aps []netip.AddrPort) (int, error) {
	if !r.io.rxGRO {
		r.grow(len(bufs))
		got, err := r.recvmmsg(bufs, false)
		if err != nil {
			return 0, err
		}
		for i := range got {
			sizes[i] = int(r.hdrs[i].n)
			if r.hdrs[i].hdr.Flags&unix.MSG_TRUNC != 0 {
				sizes[i] = 0
			}
			aps[i] = r.addr(i)
		}
		return got, nil
	}
	if r.pend >= r.got {
		got, err := r.recvmmsg(r.gro, true)
		if err != nil {
			return 0, err
		}
		r.got, r.pend, r.off = got, 0, 0
	}
	n := 0
	for n < len(bufs) && r.pend < r.got {
		i := r.pend
		total := int(r.hdrs[i].n)
		seg := r.segSize(i)
		if seg <= 0 || seg >= total {
			seg = total
		} else if r.off == 0 {
			r.io.groRecv.Add(1)
		}
		if r.hdrs[i].hdr.Flags&unix.MSG_TRUNC != 0 {
			total = 0 // cannot happen with 64 KiB buffers; skip it
		}
		ap := r.addr(i)
		for n < len(bufs) && r.off < total {
			l := min(seg, total-r.off)
			if l <= len(bufs[n]) {
				sizes[n] = copy(bufs[n], r.gro[i][r.off:r.off+l])
			} else {
				sizes[n] = 0
			}
			aps[n] = ap
			r.off += l
			n++
		}
		if r.off >= total {
			r.pend, r.off = r.pend+1, 0
		}
	}
	return n, nil
}
