package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
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
//   - One reader goroutine per listen address (Resolver.udpReaders; with
//     more, each reads its own SO_REUSEPORT socket on Linux, and elsewhere,
//     or when the option is refused, they share one socket), blocked in a
//     batch read. No read deadline: Close closes the sockets, which
//     unblocks the reads.
//   - On Linux a batch read (recvmmsg, udpbatch_linux.go) takes up to
//     udpBatch datagrams, as many as are queued: it never waits for more,
//     so a lone query is answered as soon as it arrives. The reader
//     answers the batch, then sends the answers with one sendmmsg.
//     Elsewhere a batch is one datagram.
//   - A reader answers a query inline when the chain can answer it from
//     memory (local zone, management-domain cache hit, validation errors,
//     SERVFAIL when nobody matches): see inlineSafe in chain.go. A repeat
//     of a local-zone answer or a cache hit is replayed from the reader's
//     table of pre-encoded answers without unpacking the query
//     (answers.go). Anything that needs I/O (a nameserver group, a cache
//     miss, a CNAME leaving the local zone) goes to a slow-path goroutine
//     tracked like the cache's lookups, at most maxSlowQueries at a time;
//     past that the query is dropped (the client retries), so a burst of
//     slow queries neither blocks the readers nor grows without bound.
//   - Replies go out with no control message: the socket is bound to one
//     address, so the kernel picks that source. An unspecified listen
//     address (0.0.0.0, ::) needs the control message to answer from the
//     address the query reached, so it keeps miekg's server.
//   - Each reader reuses its buffers and, when the query is answered
//     inline, its request message. A datagram longer than udpReadBuffer is
//     read truncated, as miekg's server reads it.
//
// Accept policy, FORMERR/NOTIMP for rejected and unparsable queries, EDNS0
// and truncation are exactly those of the miekg path (acceptQuery, reject,
// finalize); a handler panic costs one SERVFAIL and the reader goes on.
const (
	// udpReadersPerAddr is the default number of reader goroutines per
	// listen address. One: with batched raw syscalls a reader answers
	// over 100k local-zone queries a second on one core, and a second
	// reader only added wakeups (a futex round trip per query at a fixed
	// 10k QPS) and no throughput on the 2-core rig (BENCHMARKS.md, DNS).
	udpReadersPerAddr = 1
	// maxSlowQueries caps the slow-path goroutines of the whole resolver.
	maxSlowQueries = 1024
	// udpReadBuffer is the read buffer of each batch slot (miekg's
	// default UDP buffer; queries are far smaller).
	udpReadBuffer = mdns.DefaultMsgSize
	// udpOutBuffer is each batch slot's pack buffer. PackBuffer wants room
	// for the message uncompressed plus one byte, which any untruncated UDP
	// answer (at most serverUDPSize) leaves; a truncated one may get a
	// buffer of its own.
	udpOutBuffer = 2048
)

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

// startUDP starts the readers of s: n in all, spread over its sockets. It
// starts none if one cannot be made.
func (r *Resolver) startUDP(s *udpServer, n int) error {
	readers := make([]*udpReader, n)
	for i := range readers {
		var err error
		if readers[i], err = r.newUDPReader(s.conns[i%len(s.conns)]); err != nil {
			return err
		}
	}
	for _, u := range readers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			u.loop()
		}()
	}
	return nil
}

// udpReader is one reader goroutine's state; only that goroutine uses it.
type udpReader struct {
	r    *Resolver
	conn *net.UDPConn
	bc   *batchConn      // conn's batch side (nil for in-process tests)
	ctx  context.Context // inline pass: r.ctx marked inline
	txb  [][]byte        // reply buffers, one per batch slot
	out  []byte          // pack buffer of handle
	req  *mdns.Msg       // reused while queries are answered inline

	// The fast path (answers.go, wire.go).
	q        wireQuery
	answers  answerTable
	probe    []byte    // the probe query
	probeReq *mdns.Msg // the probe query, unpacked
	probeOut []byte    // the probe's answer
	replays  int       // answers replayed (tests)

	probeCtx context.Context // the probe's: the cache does not count it (metrics.go)
}

// newUDPReader makes a reader for conn; a nil conn gives one for
// in-process use of handle (tests, benchmarks).
func (r *Resolver) newUDPReader(conn *net.UDPConn) (*udpReader, error) {
	u := &udpReader{
		r: r, conn: conn, ctx: inlineCtx(r.ctx), probeCtx: context.WithValue(inlineCtx(r.ctx), probeKey{}, true),
		out: make([]byte, udpOutBuffer), req: new(mdns.Msg),
		probeReq: new(mdns.Msg), probeOut: make([]byte, udpOutBuffer),
	}
	u.q.key = make([]byte, 0, maxWireName+3)
	if conn != nil {
		var err error
		if u.bc, err = newBatchConn(conn, udpBatch, udpReadBuffer); err != nil {
			return nil, err
		}
		u.txb = make([][]byte, udpBatch)
		for i := range u.txb {
			u.txb[i] = make([]byte, udpOutBuffer)
		}
	}
	return u, nil
}

func (u *udpReader) loop() {
	for {
		n, err := u.bc.read()
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
		u.serveBatch(n)
	}
}

// serveBatch answers what it can of the n datagrams just read inline,
// hands the rest to the slow path, and sends the inline answers with as
// few calls as the platform allows.
func (u *udpReader) serveBatch(n int) {
	nt := 0
	for i := 0; i < n; i++ {
		out, slow := u.handleInto(u.bc.datagram(i), u.txb[nt])
		switch {
		case slow != nil:
			u.r.serveSlow(u.conn, slow, u.bc.sender(i))
		case out != nil:
			u.bc.queue(i, out)
			nt++
		}
	}
	if err := u.bc.flush(); err != nil && !errors.Is(err, net.ErrClosed) {
		u.r.log.Debug("write answer", "err", err)
	}
}

// handle is handleInto with the reader's own pack buffer.
func (u *udpReader) handle(pkt []byte) (out []byte, slow *mdns.Msg) {
	return u.handleInto(pkt, u.out)
}

// handleInto answers one datagram from memory into dst (or a larger
// buffer it allocates). It returns the reply to send (nil: send nothing),
// or the unpacked query when it needs I/O (the caller hands it to the slow
// path; the reader no longer uses it).
func (u *udpReader) handleInto(pkt, dst []byte) (out []byte, slow *mdns.Msg) {
	if len(pkt) < 12 {
		return nil, nil // too short for a header: no reply (as miekg)
	}
	switch action := acceptQuery(rawHeader(pkt)); action {
	case mdns.MsgIgnore:
		return nil, nil
	case mdns.MsgReject, mdns.MsgRejectNotImplemented:
		resp := reject(headerOnly(pkt), action)
		u.r.queries.add(kindServer, resp.Rcode)
		return u.pack(resp, dst), nil
	}
	q := &u.q
	learn := parseWireQuery(pkt, q)
	if learn {
		if a := u.lookupAnswer(q); a != nil {
			if a.wire != nil {
				u.replays++
				u.r.queries.add(a.kind, a.rcode)
				if a.kind == kindMgmtCache {
					u.r.cache.ctr.hits.Add(1)
				}
				return a.write(dst, pkt, q.nameEnd), nil
			}
			learn = false // the probe disagreed before: full path only
		}
	}
	req := u.req
	if err := req.Unpack(pkt); err != nil {
		u.r.queries.add(kindServer, mdns.RcodeFormatError)
		return u.pack(reject(req, mdns.MsgReject), dst), nil
	}
	var (
		st  *state
		gen uint64
		now time.Time
	)
	if learn {
		st, gen, now = u.r.state.Load(), u.r.cache.gen.Load(), u.r.clock()
	}
	resp, info := u.r.serveMsgInfo(u.ctx, req, true)
	if resp == needIO {
		u.req = new(mdns.Msg) // req now belongs to the slow path
		return nil, req
	}
	u.r.countAnswer(resp, info)
	out = u.pack(resp, dst)
	if learn && out != nil {
		u.learn(pkt, q, req, resp, out, info, st, gen, now)
	}
	return out, nil
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

// pack packs m into dst (or a larger buffer when it does not fit); nil m
// or a failure sends nothing.
func (u *udpReader) pack(m *mdns.Msg, dst []byte) []byte {
	if m == nil {
		return nil
	}
	out, err := m.PackBuffer(dst[:cap(dst)]) // PackBuffer wants the length
	if err != nil {
		u.r.log.Debug("pack answer", "err", err)
		return nil
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
		resp, info := r.serveMsgInfo(ctx, req, true)
		r.countAnswer(resp, info)
		if resp != nil {
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
