package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// The UDP serving path. miekg's dns.Server costs most of a local-zone
// answer in per-packet overhead (a goroutine per packet, a read deadline
// re-armed per read, an IP_PKTINFO control message on every reply), so UDP
// on a specific listen address is served here instead:
//
//   - udpReaders() reader goroutines per listen address, each blocked in
//     ReadFromUDPAddrPort on its own SO_REUSEPORT socket (Linux; elsewhere,
//     or when the option is refused, they share one socket). No read
//     deadline: Close closes the sockets, which unblocks the reads.
//   - A reader answers a query inline when the chain can answer it from
//     memory (local zone, management-domain cache hit, validation errors,
//     SERVFAIL when nobody matches): see inlineSafe in chain.go. Anything
//     that needs I/O (a nameserver group, a cache miss, a CNAME leaving the
//     local zone) goes to a slow-path goroutine tracked like the cache's
//     lookups, at most maxSlowQueries at a time; past that the query is
//     dropped (the client retries), so a burst of slow queries neither
//     blocks the readers nor grows without bound.
//   - Replies go out with WriteToUDPAddrPort, no control message: the
//     socket is bound to one address, so the kernel picks that source.
//     An unspecified listen address (0.0.0.0, ::) needs the control
//     message to answer from the address the query reached, so it keeps
//     miekg's server.
//   - Each reader reuses its read buffer, its pack buffer and, when the
//     query is answered inline, its request message.
//
// Accept policy, FORMERR/NOTIMP for rejected and unparsable queries, EDNS0
// and truncation are exactly those of the miekg path (acceptQuery, reject,
// finalize); a handler panic costs one SERVFAIL and the reader goes on.
const (
	// maxUDPReaders caps the readers per listen address.
	maxUDPReaders = 4
	// maxSlowQueries caps the slow-path goroutines of the whole resolver.
	maxSlowQueries = 1024
	// udpReadBuffer fits any datagram.
	udpReadBuffer = 65535
)

// udpReaders is the number of reader goroutines per UDP listen address.
func udpReaders() int { return min(runtime.GOMAXPROCS(0), maxUDPReaders) }

// udpServer is the UDP side of one listen address.
type udpServer struct {
	conns []*net.UDPConn // one per reader with SO_REUSEPORT, else one
	wg    sync.WaitGroup // the readers
}

// close closes the sockets (unblocking the readers) and waits for the
// readers. Slow-path goroutines are the Resolver's (r.wg).
func (s *udpServer) close() {
	for _, c := range s.conns {
		c.Close()
	}
	s.wg.Wait()
}

// listenUDP binds n sockets on ap (SO_REUSEPORT, same port) or, when that
// is not possible, one. port 0 picks the port with the first socket.
func listenUDP(ctx context.Context, ap netip.AddrPort, n int) ([]*net.UDPConn, error) {
	if n > 1 && reusePortSupported {
		lc := net.ListenConfig{Control: setReusePort}
		first, err := lc.ListenPacket(ctx, "udp", ap.String())
		if err == nil {
			conns := []*net.UDPConn{first.(*net.UDPConn)}
			port := conns[0].LocalAddr().(*net.UDPAddr).AddrPort().Port()
			for len(conns) < n && err == nil {
				var pc net.PacketConn
				if pc, err = lc.ListenPacket(ctx, "udp", netip.AddrPortFrom(ap.Addr(), port).String()); err == nil {
					conns = append(conns, pc.(*net.UDPConn))
				}
			}
			if err == nil {
				return conns, nil
			}
			for _, c := range conns {
				c.Close()
			}
		}
		// Fall back to one plain socket (the option refused, or the
		// address or port taken: the plain bind reports that).
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", ap.String())
	if err != nil {
		return nil, err
	}
	return []*net.UDPConn{pc.(*net.UDPConn)}, nil
}

// startUDP starts the readers of s: n in all, spread over its sockets.
func (r *Resolver) startUDP(s *udpServer, n int) {
	for i := 0; i < n; i++ {
		u := r.newUDPReader(s.conns[i%len(s.conns)])
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			u.loop()
		}()
	}
}

// udpReader is one reader goroutine's state; only that goroutine uses it.
type udpReader struct {
	r    *Resolver
	conn *net.UDPConn
	ctx  context.Context // inline pass: r.ctx marked inline
	buf  []byte          // read buffer
	out  []byte          // pack buffer
	req  *mdns.Msg       // reused while queries are answered inline
}

func (r *Resolver) newUDPReader(conn *net.UDPConn) *udpReader {
	return &udpReader{
		r: r, conn: conn, ctx: inlineCtx(r.ctx),
		buf: make([]byte, udpReadBuffer), out: make([]byte, 0, mdns.MaxMsgSize),
		req: new(mdns.Msg),
	}
}

func (u *udpReader) loop() {
	for {
		n, from, err := u.conn.ReadFromUDPAddrPort(u.buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Nothing a UDP read returns on an open, unconnected socket
			// is fatal; do not spin if it repeats.
			u.r.log.Debug("udp read", "err", err)
			time.Sleep(time.Millisecond)
			continue
		}
		out, slow := u.handle(u.buf[:n])
		if slow != nil {
			u.r.serveSlow(u.conn, slow, from)
			continue
		}
		if out != nil {
			if _, err := u.conn.WriteToUDPAddrPort(out, from); err != nil {
				u.r.log.Debug("write answer", "remote", from, "err", err)
			}
		}
	}
}

// handle answers one datagram from memory. It returns the reply to send
// (valid until the next call; nil: send nothing), or the unpacked query
// when it needs I/O (the caller hands it to the slow path; the reader no
// longer uses it).
func (u *udpReader) handle(pkt []byte) (out []byte, slow *mdns.Msg) {
	if len(pkt) < 12 {
		return nil, nil // too short for a header: no reply (as miekg)
	}
	switch action := acceptQuery(rawHeader(pkt)); action {
	case mdns.MsgIgnore:
		return nil, nil
	case mdns.MsgReject, mdns.MsgRejectNotImplemented:
		return u.pack(reject(headerOnly(pkt), action)), nil
	}
	req := u.req
	if err := req.Unpack(pkt); err != nil {
		return u.pack(reject(req, mdns.MsgReject)), nil
	}
	resp := u.r.serveMsgCtx(u.ctx, req, true)
	if resp == needIO {
		u.req = new(mdns.Msg) // req now belongs to the slow path
		return nil, req
	}
	return u.pack(resp), nil
}

// rawHeader reads the header of pkt (at least 12 bytes).
func rawHeader(pkt []byte) mdns.Header {
	return mdns.Header{
		Id:      binary.BigEndian.Uint16(pkt[0:]),
		Bits:    binary.BigEndian.Uint16(pkt[2:]),
		Qdcount: binary.BigEndian.Uint16(pkt[4:]),
		Ancount: binary.BigEndian.Uint16(pkt[6:]),
		Nscount: binary.BigEndian.Uint16(pkt[8:]),
		Arcount: binary.BigEndian.Uint16(pkt[10:]),
	}
}

// pack packs m into the reader's buffer; nil m or a failure sends nothing.
func (u *udpReader) pack(m *mdns.Msg) []byte {
	if m == nil {
		return nil
	}
	out, err := m.PackBuffer(u.out)
	if err != nil {
		u.r.log.Debug("pack answer", "err", err)
		return nil
	}
	if cap(out) <= mdns.MaxMsgSize {
		u.out = out[:0]
	}
	return out
}

// headerOnly returns a message holding just pkt's header, as miekg builds
// it before deciding to reject.
func headerOnly(pkt []byte) *mdns.Msg {
	var h [12]byte
	copy(h[:4], pkt) // ID and flags; the section counts stay zero
	m := new(mdns.Msg)
	_ = m.Unpack(h[:]) // a 12-byte header always unpacks
	return m
}

// reject turns req (its header, and whatever of it unpacked) into miekg's
// answer to a rejected or unparsable query: FORMERR, or NOTIMP keeping the
// opcode, no records.
func reject(req *mdns.Msg, action mdns.MsgAcceptAction) *mdns.Msg {
	opcode := req.Opcode
	req.SetRcodeFormatError(req)
	req.Zero = false
	if action == mdns.MsgRejectNotImplemented {
		req.Opcode = opcode
		req.Rcode = mdns.RcodeNotImplemented
	}
	req.Ns, req.Answer, req.Extra = nil, nil, nil
	return req
}

// serveSlow answers req on a tracked goroutine (see the package comment
// on the UDP path). It drops req when maxSlowQueries are already running
// or the resolver is closing.
func (r *Resolver) serveSlow(conn *net.UDPConn, req *mdns.Msg, from netip.AddrPort) {
	if r.slow.Add(1) > maxSlowQueries {
		r.slow.Add(-1)
		r.slowDropped.Add(1)
		r.log.Debug("too many slow queries in flight, dropping", "remote", from)
		return
	}
	ok := r.spawn(func(ctx context.Context) {
		defer r.slow.Add(-1)
		var out []byte
		if resp := r.serveMsgCtx(ctx, req, true); resp != nil {
			var err error
			if out, err = resp.Pack(); err != nil {
				r.log.Debug("pack answer", "err", err)
				return
			}
		}
		if out != nil {
			if _, err := conn.WriteToUDPAddrPort(out, from); err != nil {
				r.log.Debug("write answer", "remote", from, "err", err)
			}
		}
	})
	if !ok {
		r.slow.Add(-1)
	}
}

// slowCounters are the slow path's gauges (tests, debugging).
type slowCounters struct {
	slow        atomic.Int64 // slow-path goroutines running
	slowDropped atomic.Int64 // queries dropped at maxSlowQueries
}
