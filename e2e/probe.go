package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"petrel/lab"
)

// Echo is a UDP echo on a lab host that answers every datagram with
// "SOURCE PAYLOAD" (the address it saw the datagram come from) and counts
// arrivals per source address, so a test can tell which path a packet took
// (a masquerading router's address) and whether anything arrived at all.
type Echo struct {
	Addr netip.AddrPort
	pc   *net.UDPConn

	mu   sync.Mutex
	from map[netip.Addr]int
	n    int
}

// StartEcho listens on addr (IPv4 or IPv6) inside h and serves until Close.
func StartEcho(h *lab.Host, addr netip.AddrPort) (*Echo, error) {
	var pc *net.UDPConn
	err := h.Do(func() error {
		var err error
		pc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("echo on %s %s: %w", h.Name, addr, err)
	}
	e := &Echo{Addr: addr, pc: pc, from: map[netip.Addr]int{}}
	go e.serve()
	return e, nil
}

func (e *Echo) serve() {
	buf := make([]byte, 2048)
	for {
		n, from, err := e.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		e.mu.Lock()
		e.from[from.Addr()]++
		e.n++
		e.mu.Unlock()
		_, _ = e.pc.WriteToUDPAddrPort([]byte(from.String()+" "+string(buf[:n])), from)
	}
}

// Arrivals returns how many datagrams arrived in total and from src (src
// may be the zero Addr).
func (e *Echo) Arrivals(src netip.Addr) (total, fromSrc int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n, e.from[src]
}

// Close stops the echo.
func (e *Echo) Close() error { return e.pc.Close() }

// Prober sends numbered datagrams to an Echo from one socket in a host's
// namespace and matches the answers by number, so a late answer to an old
// probe never counts for a new one.
type Prober struct {
	c   *net.UDPConn
	seq uint64
}

// NewProber opens the probe socket in h; with dev set it is bound to that
// interface (SO_BINDTODEVICE), as an application pinned to the underlay
// would be: routing then ignores routes through other interfaces.
func NewProber(h *lab.Host, ipv6 bool, dev string) (*Prober, error) {
	network, laddr := "udp4", "0.0.0.0:0"
	if ipv6 {
		network, laddr = "udp6", "[::]:0"
	}
	lc := net.ListenConfig{}
	if dev != "" {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	var c *net.UDPConn
	err := h.Do(func() error {
		pc, err := lc.ListenPacket(context.Background(), network, laddr)
		if err != nil {
			return err
		}
		c = pc.(*net.UDPConn)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("probe socket in %s (dev %q): %w", h.Name, dev, err)
	}
	return &Prober{c: c}, nil
}

// Close closes the probe socket.
func (p *Prober) Close() error { return p.c.Close() }

// Send sends one probe and does not wait for the answer. A send error
// (e.g. "network is unreachable") is returned.
func (p *Prober) Send(to netip.AddrPort) error {
	p.seq++
	_, err := p.c.WriteToUDPAddrPort([]byte(strconv.FormatUint(p.seq, 10)), to)
	return err
}

// Probe sends one probe and waits up to wait for its answer; it returns
// the source address the echo saw.
func (p *Prober) Probe(to netip.AddrPort, wait time.Duration) (netip.AddrPort, error) {
	if err := p.Send(to); err != nil {
		return netip.AddrPort{}, err
	}
	want := strconv.FormatUint(p.seq, 10)
	deadline := time.Now().Add(wait)
	buf := make([]byte, 512)
	for {
		_ = p.c.SetReadDeadline(deadline)
		n, _, err := p.c.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return netip.AddrPort{}, fmt.Errorf("probe %s: no answer in %v", to, wait)
			}
			return netip.AddrPort{}, err
		}
		src, seq, ok := strings.Cut(string(buf[:n]), " ")
		if !ok || seq != want {
			continue // an answer to an earlier probe
		}
		return netip.ParseAddrPort(src)
	}
}

// WaitSource probes every 200 ms until an answer arrives whose source (as
// the echo saw it) satisfies ok, for up to timeout; it returns that source.
func (p *Prober) WaitSource(ctx context.Context, to netip.AddrPort, timeout time.Duration, ok func(netip.Addr) bool) (netip.Addr, error) {
	var last netip.AddrPort
	var lastErr error
	err := poll(ctx, timeout, 10*time.Millisecond, func() bool {
		last, lastErr = p.Probe(to, 200*time.Millisecond)
		return lastErr == nil && ok(last.Addr())
	})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("probe %s: %w (last answer from %v, last error %v)", to, err, last, lastErr)
	}
	return last.Addr(), nil
}

// Is returns a predicate for WaitSource matching one address.
func Is(want netip.Addr) func(netip.Addr) bool { return func(a netip.Addr) bool { return a == want } }

// Anything accepts any answer.
func Anything(netip.Addr) bool { return true }

// ListenTCPCount accepts TCP connections on addr (IPv4 or IPv6) inside h,
// counts them and closes each at once; the count is read with the
// returned function.
func ListenTCPCount(h *lab.Host, addr netip.AddrPort) (count func() int, closeFn func(), err error) {
	var ln net.Listener
	if err := h.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr.String())
		return err
	}); err != nil {
		return nil, nil, fmt.Errorf("listen tcp %s in %s: %w", addr, h.Name, err)
	}
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			c.Close()
		}
	}()
	return func() int { mu.Lock(); defer mu.Unlock(); return n }, func() { ln.Close() }, nil
}
