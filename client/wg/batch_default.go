//go:build !linux

package wg

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.zx2c4.com/wireguard/conn"
)

// batchConn is implemented by ipv4.PacketConn and ipv6.PacketConn (their
// Message types are the same alias); off Linux they move one message per call.
type batchConn interface {
	ReadBatch(ms []ipv6.Message, flags int) (int, error)
	WriteBatch(ms []ipv6.Message, flags int) (int, error)
}

// sockIO is the per-session datagram I/O of one socket (no offloads here).
type sockIO struct {
	bc   batchConn
	msgs sync.Pool // *[]ipv6.Message
}

func newSockIO(uc *net.UDPConn, _ bool, _ *slog.Logger) (*sockIO, error) {
	s := &sockIO{}
	if la := uc.LocalAddr().(*net.UDPAddr); la.IP.To4() != nil {
		s.bc = ipv4.NewPacketConn(uc)
	} else {
		s.bc = ipv6.NewPacketConn(uc)
	}
	s.msgs.New = func() any {
		ms := make([]ipv6.Message, conn.IdealBatchSize)
		for i := range ms {
			ms[i].Buffers = make(net.Buffers, 1)
		}
		return &ms
	}
	return s, nil
}

func (s *sockIO) offloads() (gso, gro bool) { return false, false }

func (s *sockIO) sendTo(bufs [][]byte, ap netip.AddrPort) error {
	msp := s.msgs.Get().(*[]ipv6.Message)
	defer s.msgs.Put(msp)
	ua := net.UDPAddrFromAddrPort(ap)
	for len(bufs) > 0 {
		ms := (*msp)[:min(len(bufs), len(*msp))]
		for i := range ms {
			ms[i].Buffers[0] = bufs[i]
			ms[i].Addr = ua
		}
		n, err := s.bc.WriteBatch(ms, 0)
		for i := range ms {
			ms[i].Buffers[0], ms[i].Addr = nil, nil
		}
		if err != nil {
			return err
		}
		bufs = bufs[n:]
	}
	return nil
}

type recvState struct {
	io *sockIO
	ms []ipv6.Message
}

func (s *sockIO) newReader() *recvState { return &recvState{io: s} }

func (r *recvState) recv(bufs [][]byte, sizes []int, aps []netip.AddrPort) (int, error) {
	for len(r.ms) < len(bufs) {
		r.ms = append(r.ms, ipv6.Message{Buffers: make(net.Buffers, 1)})
	}
	ms := r.ms[:len(bufs)]
	for i := range ms {
		ms[i].Buffers[0] = bufs[i]
	}
	got, err := r.io.bc.ReadBatch(ms, 0)
	if err != nil {
		return 0, err
	}
	for i := range got {
		sizes[i] = ms[i].N
		if ua, ok := ms[i].Addr.(*net.UDPAddr); ok {
			aps[i] = unmapAddrPort(ua)
		} else {
			sizes[i], aps[i] = 0, netip.AddrPort{}
		}
	}
	return got, nil
}

func unmapAddrPort(ua *net.UDPAddr) netip.AddrPort {
	ip, _ := netip.AddrFromSlice(ua.IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(ua.Port))
}
