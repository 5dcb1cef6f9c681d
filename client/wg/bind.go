package wg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"petrel/client/netx"
	"petrel/internal/keys"
)

// RelaySender carries WireGuard packets to a peer through a relay instance.
// Send must not retain pkt after it returns and must not block for long (it
// runs on WireGuard's send goroutines); dropping under pressure is fine.
type RelaySender interface {
	Send(dst keys.Public, instanceURL string, pkt []byte) error
}

// ErrNoRelay is returned by Send for a relay endpoint while no RelaySender is set.
var ErrNoRelay = errors.New("no relay sender")

// BindConfig configures NewBind.
type BindConfig struct {
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// ListenAddr is the local address; the zero value listens on all
	// addresses (dual-stack "::", or "0.0.0.0" where IPv6 is unavailable).
	ListenAddr netip.Addr
	// Port is used when WireGuard asks for port 0 (its default); 0 = random.
	Port uint16
	// Relay is the relay sender; it may also be set later with SetRelay.
	Relay RelaySender
	// RelayQueue bounds packets received from relays and not yet read by
	// WireGuard (default 1024). Excess packets are dropped and counted.
	RelayQueue int
	// ICEQueue bounds STUN packets not yet read by ICE (default 256).
	ICEQueue int
	// DisableOffload turns UDP GSO (send) and GRO (receive) off even where
	// the kernel supports them (benchmarks, troubleshooting).
	DisableOffload bool
}

// BindStats are counters of packets the bind dropped on purpose.
type BindStats struct {
	RelayRxDropped uint64 // relay queue full or bind closed
	ICERxDropped   uint64 // ICE queue full or no ICE reader
	BlockedDropped uint64 // SetBlockUDP test hook
	RelayTxErrors  uint64 // RelaySender.Send failures
}

// Bind implements conn.Bind over one UDP socket shared with ICE, plus relay
// endpoints. See the package documentation for the threading contract.
type Bind struct {
	log *slog.Logger
	cfg BindConfig

	mu    sync.Mutex // serializes Open, Close, SetMark
	sess  atomic.Pointer[session]
	laddr atomic.Pointer[net.UDPAddr] // last bound address, survives Close
	mark  uint32                      // guarded by mu
	ice   atomic.Pointer[iceConn]     // current ICE facade, nil if none

	relay  atomic.Pointer[relayBox]
	block  atomic.Pointer[func(netip.AddrPort) bool]
	relayQ chan *pktBuf
	bufs   sync.Pool // *pktBuf

	relayDropped, iceDropped, blocked, relayTxErr atomic.Uint64
}

type relayBox struct{ RelaySender }

// session is one Open..Close period of the socket.
type session struct {
	conn   *net.UDPConn
	io     *sockIO
	closed chan struct{}
}

func (s *session) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

var _ conn.Bind = (*Bind)(nil)

const (
	defaultRelayQueue = 1024
	defaultICEQueue   = 256
	pktBufSize        = 2048 // fits any packet of a 1500-byte underlay
)

// pktBuf is a pooled copy of one packet queued for the relay or ICE reader.
type pktBuf struct {
	b   []byte
	n   int
	key keys.Public
	url string
	ap  netip.AddrPort
}

// NewBind returns a closed bind; wireguard-go opens it when the device goes up.
func NewBind(cfg BindConfig) *Bind {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RelayQueue <= 0 {
		cfg.RelayQueue = defaultRelayQueue
	}
	if cfg.ICEQueue <= 0 {
		cfg.ICEQueue = defaultICEQueue
	}
	b := &Bind{
		log:    cfg.Logger.With("component", "wg-bind"),
		cfg:    cfg,
		relayQ: make(chan *pktBuf, cfg.RelayQueue),
	}
	b.bufs.New = func() any { return &pktBuf{b: make([]byte, pktBufSize)} }
	if cfg.Relay != nil {
		b.relay.Store(&relayBox{cfg.Relay})
	}
	return b
}

// SetRelay sets (or with nil clears) the relay sender. Safe at any time.
func (b *Bind) SetRelay(r RelaySender) {
	if r == nil {
		b.relay.Store(nil)
		return
	}
	b.relay.Store(&relayBox{r})
}

// SetBlockUDP installs a test hook: direct UDP packets to or from addresses
// for which fn returns true are dropped (STUN included). nil removes it.
func (b *Bind) SetBlockUDP(fn func(netip.AddrPort) bool) {
	if fn == nil {
		b.block.Store(nil)
		return
	}
	b.block.Store(&fn)
}

func (b *Bind) blockedAddr(ap netip.AddrPort) bool {
	if f := b.block.Load(); f != nil && (*f)(ap) {
		b.blocked.Add(1)
		return true
	}
	return false
}

// Stats returns the drop counters.
func (b *Bind) Stats() BindStats {
	return BindStats{
		RelayRxDropped: b.relayDropped.Load(),
		ICERxDropped:   b.iceDropped.Load(),
		BlockedDropped: b.blocked.Load(),
		RelayTxErrors:  b.relayTxErr.Load(),
	}
}

// LocalAddr returns the address the socket is (or was last) bound to, or nil
// before the first Open.
func (b *Bind) LocalAddr() *net.UDPAddr { return b.laddr.Load() }

// Open binds the socket. It returns a UDP and a relay ReceiveFunc.
func (b *Bind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sess.Load() != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	if port == 0 {
		port = b.cfg.Port
	}
	uc, err := b.listen(port)
	if err != nil {
		return nil, 0, err
	}
	tuneSocket(uc)
	if b.mark != 0 && b.mark != netx.Mark {
		if rc, err := uc.SyscallConn(); err == nil {
			if err := netx.SetMark(rc, b.mark); err != nil {
				b.log.Debug("set mark on reopen", "err", err)
			}
		}
	}
	la := uc.LocalAddr().(*net.UDPAddr)
	sio, err := newSockIO(uc, !b.cfg.DisableOffload, b.log)
	if err != nil {
		uc.Close()
		return nil, 0, fmt.Errorf("open bind: %w", err)
	}
	s := &session{conn: uc, io: sio, closed: make(chan struct{})}
	b.laddr.Store(la)
	b.sess.Store(s)
	b.log.Debug("bind open", "addr", la.String())
	return []conn.ReceiveFunc{b.makeReceiveUDP(s), b.makeReceiveRelay(s)}, uint16(la.Port), nil
}

func (b *Bind) listen(port uint16) (*net.UDPConn, error) {
	ctx := context.Background()
	p := strconv.Itoa(int(port))
	if a := b.cfg.ListenAddr; a.IsValid() {
		network := "udp4"
		if a.Is6() && !a.Is4In6() {
			network = "udp6"
		}
		uc, err := netx.ListenUDP(ctx, b.log, network, net.JoinHostPort(a.Unmap().String(), p))
		if err != nil {
			return nil, fmt.Errorf("open bind: %w", err)
		}
		return uc, nil
	}
	uc, err := netx.ListenUDP(ctx, b.log, "udp", net.JoinHostPort("::", p))
	if err == nil {
		return uc, nil
	}
	uc, err4 := netx.ListenUDP(ctx, b.log, "udp4", net.JoinHostPort("0.0.0.0", p))
	if err4 != nil {
		return nil, fmt.Errorf("open bind: %w", errors.Join(err, err4))
	}
	return uc, nil
}

// Close closes the socket; every ReceiveFunc returned by Open then returns
// net.ErrClosed. The bind may be opened again. The ICE facade survives.
func (b *Bind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sess.Swap(nil)
	if s == nil {
		return nil
	}
	close(s.closed)
	if err := s.conn.Close(); err != nil {
		return fmt.Errorf("close bind: %w", err)
	}
	return nil
}

// SetMark sets SO_MARK on the socket (wireguard-go calls it when an fwmark
// is configured). The socket is already marked with netx.Mark by default.
func (b *Bind) SetMark(mark uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mark = mark
	s := b.sess.Load()
	if s == nil || mark == 0 {
		return nil
	}
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("set mark: %w", err)
	}
	return netx.SetMark(rc, mark)
}

// BatchSize is conn.IdealBatchSize (recvmmsg/sendmmsg on Linux).
func (b *Bind) BatchSize() int { return conn.IdealBatchSize }

// ParseEndpoint parses UDP and relay endpoints (see ParseEndpoint).
func (b *Bind) ParseEndpoint(s string) (conn.Endpoint, error) { return ParseEndpoint(s) }

// Send writes bufs to ep: one sendmmsg for a UDP endpoint, one RelaySender
// call per packet for a relay endpoint.
func (b *Bind) Send(bufs [][]byte, ep conn.Endpoint) error {
	switch e := ep.(type) {
	case *UDPEndpoint:
		return b.sendUDP(bufs, e)
	case *RelayEndpoint:
		return b.sendRelay(bufs, e)
	default:
		return conn.ErrWrongEndpointType
	}
}

func (b *Bind) sendUDP(bufs [][]byte, e *UDPEndpoint) error {
	s := b.sess.Load()
	if s == nil {
		return net.ErrClosed
	}
	if b.blockedAddr(e.ap) {
		return nil
	}
	if err := s.io.sendTo(bufs, e.ap); err != nil {
		if s.isClosed() {
			return net.ErrClosed
		}
		return fmt.Errorf("send udp: %w", err)
	}
	return nil
}

// Offloads reports whether UDP GSO (send) and GRO (receive) are in use on
// the open socket; both false while closed or where unsupported.
func (b *Bind) Offloads() (gso, gro bool) {
	if s := b.sess.Load(); s != nil {
		return s.io.offloads()
	}
	return false, false
}

func (b *Bind) sendRelay(bufs [][]byte, e *RelayEndpoint) error {
	r := b.relay.Load()
	if r == nil {
		return ErrNoRelay
	}
	for _, p := range bufs {
		if err := r.Send(e.key, e.url, p); err != nil {
			b.relayTxErr.Add(1)
			return fmt.Errorf("send relay: %w", err)
		}
	}
	return nil
}

func (b *Bind) getBuf(n int) *pktBuf {
	p := b.bufs.Get().(*pktBuf)
	if cap(p.b) < n {
		p.b = make([]byte, n)
	}
	p.b = p.b[:cap(p.b)]
	p.n = n
	return p
}

func (b *Bind) putBuf(p *pktBuf) {
	p.url = ""
	b.bufs.Put(p)
}

// DeliverRelay injects a packet received from a relay. It copies pkt, never
// blocks, and drops (counting) when the queue is full or the bind is closed.
// Safe for concurrent use by several relay connections.
func (b *Bind) DeliverRelay(src keys.Public, instanceURL string, pkt []byte) {
	if b.sess.Load() == nil || len(pkt) == 0 {
		b.relayDropped.Add(1)
		return
	}
	p := b.getBuf(len(pkt))
	copy(p.b, pkt)
	p.key, p.url = src, instanceURL
	select {
	case b.relayQ <- p:
	default:
		b.putBuf(p)
		b.relayDropped.Add(1)
	}
}

type relayKey struct {
	key keys.Public
	url string
}

func (b *Bind) makeReceiveRelay(s *session) conn.ReceiveFunc {
	// Called by exactly one goroutine, so the cache needs no lock.
	cache := make(map[relayKey]*RelayEndpoint)
	endpoint := func(p *pktBuf) *RelayEndpoint {
		if ep, ok := cache[relayKey{p.key, p.url}]; ok {
			return ep
		}
		if len(cache) > 4096 {
			clear(cache)
		}
		ep := &RelayEndpoint{key: p.key, url: p.url}
		cache[relayKey{p.key, p.url}] = ep
		return ep
	}
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		if s.isClosed() {
			return 0, net.ErrClosed
		}
		var p *pktBuf
		select {
		case p = <-b.relayQ:
		case <-s.closed:
			return 0, net.ErrClosed
		}
		n := 0
		for {
			if len(bufs[n]) < p.n {
				sizes[n] = 0 // cannot happen with wireguard-go's 64 KiB buffers
			} else {
				sizes[n] = copy(bufs[n], p.b[:p.n])
				eps[n] = endpoint(p)
			}
			b.putBuf(p)
			n++
			if n == len(bufs) {
				return n, nil
			}
			select {
			case p = <-b.relayQ:
			default:
				return n, nil
			}
		}
	}
}

func (b *Bind) makeReceiveUDP(s *session) conn.ReceiveFunc {
	// Per-goroutine state: wireguard-go calls each ReceiveFunc from one
	// goroutine only.
	rd := s.io.newReader()
	var aps []netip.AddrPort
	cache := make(map[netip.AddrPort]*UDPEndpoint)
	var last *UDPEndpoint // consecutive datagrams mostly share a source
	endpoint := func(ap netip.AddrPort) *UDPEndpoint {
		if last != nil && last.ap == ap {
			return last
		}
		ep, ok := cache[ap]
		if !ok {
			if len(cache) > 4096 {
				clear(cache)
			}
			ep = newUDPEndpoint(ap)
			cache[ap] = ep
		}
		last = ep
		return ep
	}
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		if len(aps) < len(bufs) {
			aps = make([]netip.AddrPort, len(bufs))
		}
		for {
			got, err := rd.recv(bufs, sizes, aps)
			if err != nil {
				if s.isClosed() || errors.Is(err, net.ErrClosed) {
					return 0, net.ErrClosed
				}
				// Transient (e.g. ICMP-induced ECONNREFUSED): keep reading.
				b.log.Debug("udp read", "err", err)
				time.Sleep(5 * time.Millisecond)
				continue
			}
			kept := 0
			for i := 0; i < got; i++ {
				if sizes[i] == 0 {
					continue
				}
				ap := aps[i]
				if !ap.IsValid() || b.blockedAddr(ap) {
					sizes[i] = 0
					continue
				}
				if pkt := bufs[i][:sizes[i]]; IsSTUN(pkt) {
					b.deliverICE(pkt, ap)
					sizes[i] = 0
					continue
				}
				eps[i] = endpoint(ap)
				kept++
			}
			if kept > 0 {
				return got, nil
			}
		}
	}
}
