package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
)

const (
	// serverUDPSize is the EDNS0 buffer we advertise and the largest UDP
	// answer we send whatever the client advertises (DNS flag day 2020:
	// no fragmentation; the overlay MTU is about 1280).
	serverUDPSize = 1232
	// tcpIdleTimeout closes idle TCP client connections.
	tcpIdleTimeout = 10 * time.Second
)

// listen binds UDP and TCP on ap (same port for both; port 0 picks one) and
// starts serving both: UDP with our readers (udp.go), or miekg's server when
// ap's address is unspecified; TCP with miekg's server. mu held.
func (r *Resolver) listen(ap netip.AddrPort) error {
	var lc net.ListenConfig
	var (
		conns []*net.UDPConn
		ln    net.Listener
		err   error
	)
	nReaders := r.udpReaders
	if ap.Addr().IsUnspecified() {
		nReaders = 1 // one socket for miekg's server
	}
	closeUDP := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for attempt := 0; attempt < 5; attempt++ {
		conns, err = listenUDP(r.ctx, ap, nReaders)
		if err != nil {
			return fmt.Errorf("dns: listen udp %s: %w", ap, err)
		}
		bound := conns[0].LocalAddr().(*net.UDPAddr).AddrPort()
		ln, err = lc.Listen(r.ctx, "tcp", netip.AddrPortFrom(ap.Addr(), bound.Port()).String())
		if err == nil {
			break
		}
		closeUDP()
		if ap.Port() != 0 || !errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("dns: listen tcp %s: %w", netip.AddrPortFrom(ap.Addr(), bound.Port()), err)
		}
	}
	if err != nil {
		return fmt.Errorf("dns: listen tcp %s: %w", ap, err)
	}
	bound := netip.AddrPortFrom(ap.Addr().Unmap(), conns[0].LocalAddr().(*net.UDPAddr).AddrPort().Port())
	h := mdns.HandlerFunc(r.serveWire)
	servers := []*mdns.Server{{Listener: ln, Handler: h, IdleTimeout: func() time.Duration { return tcpIdleTimeout }, MsgAcceptFunc: acceptQuery}}
	var us *udpServer
	if ap.Addr().IsUnspecified() {
		servers = append(servers, &mdns.Server{PacketConn: conns[0], Handler: h, UDPSize: mdns.DefaultMsgSize, MsgAcceptFunc: acceptQuery})
	} else {
		us = &udpServer{conns: conns}
	}
	for _, srv := range servers {
		started := make(chan struct{})
		failed := make(chan error, 1)
		srv.NotifyStartedFunc = func() { close(started) }
		r.wg.Add(1)
		go func(srv *mdns.Server) {
			defer r.wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				failed <- err
			}
		}(srv)
		select {
		case <-started:
			r.servers = append(r.servers, srv)
		case err := <-failed:
			closeUDP()
			ln.Close()
			return fmt.Errorf("dns: serve %s: %w", bound, err)
		}
	}
	if us != nil {
		if err := r.startUDP(us, nReaders); err != nil {
			closeUDP()
			return fmt.Errorf("dns: serve udp %s: %w", bound, err)
		}
		r.udp = append(r.udp, us)
	}
	r.addrs = append(r.addrs, bound)
	return nil
}

// acceptQuery is miekg's default accept policy minus the rejection of
// multiple questions, which serveWire answers itself with FORMERR.
func acceptQuery(dh mdns.Header) mdns.MsgAcceptAction {
	if isResponse := dh.Bits&(1<<15) != 0; isResponse {
		return mdns.MsgIgnore
	}
	if opcode := int(dh.Bits>>11) & 0xF; opcode != mdns.OpcodeQuery && opcode != mdns.OpcodeNotify {
		return mdns.MsgRejectNotImplemented
	}
	if dh.Qdcount != 1 || dh.Ancount > 1 || dh.Nscount > 1 || dh.Arcount > 2 {
		return mdns.MsgReject
	}
	return mdns.MsgAccept
}

// shutdownServers stops every listener and waits for their goroutines
// (the UDP readers; slow-path queries are waited for with the background
// work). mu held.
func (r *Resolver) shutdownServers() {
	var wg sync.WaitGroup
	for _, us := range r.udp {
		wg.Add(1)
		go func(us *udpServer) {
			defer wg.Done()
			us.close()
		}(us)
	}
	for _, srv := range r.servers {
		wg.Add(1)
		go func(srv *mdns.Server) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.ShutdownContext(ctx)
		}(srv)
	}
	wg.Wait()
	r.servers, r.udp, r.addrs = nil, nil, nil
}

// serveWire answers one query from a miekg listener (TCP; UDP on an
// unspecified address).
func (r *Resolver) serveWire(w mdns.ResponseWriter, req *mdns.Msg) {
	_, udp := w.LocalAddr().(*net.UDPAddr)
	resp, info := r.serveMsgInfo(r.ctx, req, udp)
	r.countAnswer(resp, info)
	if resp == nil {
		return
	}
	if err := w.WriteMsg(resp); err != nil {
		r.log.Debug("write answer", "remote", w.RemoteAddr(), "err", err)
	}
}

// serveMsg resolves req and returns the wire-ready answer: ID, question,
// flags, EDNS0 and truncation fixed up. It never panics; nil means drop.
func (r *Resolver) serveMsg(req *mdns.Msg, udp bool) *mdns.Msg {
	return r.serveMsgCtx(r.ctx, req, udp)
}

// serveMsgCtx is serveMsg on ctx (r.ctx, or the inline pass of a UDP
// reader, which can return needIO as it is).
func (r *Resolver) serveMsgCtx(ctx context.Context, req *mdns.Msg, udp bool) *mdns.Msg {
	resp, _ := r.serveMsgInfo(ctx, req, udp)
	return resp
}

// serveMsgInfo is serveMsgCtx that also says who answered (a zero
// answerInfo after a panic).
func (r *Resolver) serveMsgInfo(ctx context.Context, req *mdns.Msg, udp bool) (resp *mdns.Msg, info answerInfo) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("panic answering query", "panic", p)
			resp, info = finalize(req, reply(req, mdns.RcodeServerFailure), udp), answerInfo{}
		}
	}()
	if req.Response {
		return nil, answerInfo{}
	}
	// No per-query timer here (it would cost a quarter of a local-zone
	// answer): handlers that do I/O bound themselves (queryTimeout per
	// upstream handler, missWait in the cache); Close cancels r.ctx.
	if resp, info = r.resolve(ctx, req); resp == needIO {
		return needIO, answerInfo{}
	}
	return finalize(req, resp, udp), info
}

// resolve validates q and runs the full chain. It always returns a message.
func (r *Resolver) resolve(ctx context.Context, q *mdns.Msg) (*mdns.Msg, answerInfo) {
	switch {
	case q.Opcode != mdns.OpcodeQuery:
		return reply(q, mdns.RcodeNotImplemented), answerInfo{Handler: "server", How: "opcode not implemented"}
	case len(q.Question) != 1:
		return reply(q, mdns.RcodeFormatError), answerInfo{Handler: "server", How: "not exactly one question"}
	case q.Question[0].Qclass != mdns.ClassINET && q.Question[0].Qclass != mdns.ClassANY:
		return reply(q, mdns.RcodeRefused), answerInfo{Handler: "server", How: "class not served"}
	}
	if opt := q.IsEdns0(); opt != nil && opt.Version() != 0 {
		return reply(q, mdns.RcodeBadVers), answerInfo{Handler: "server", How: "unsupported EDNS version"}
	}
	if _, ok := mdns.IsDomainName(q.Question[0].Name); !ok {
		return reply(q, mdns.RcodeFormatError), answerInfo{Handler: "server", How: "bad name"}
	}
	resp, info := r.state.Load().chain.resolve(ctx, q, PrioMgmtCache)
	if resp == nil {
		return reply(q, mdns.RcodeServerFailure), answerInfo{Handler: "none", How: "no handler answered"}
	}
	return resp, info
}

// finalize makes resp a well-formed answer to req: same ID and question,
// RD copied, RA set, EDNS0 echoed (our buffer size, the client's DO bit) and
// the message truncated (TC set) to what the client can take: 512 bytes
// without EDNS0, min(client size, serverUDPSize) with it, 65535 over TCP.
func finalize(req, resp *mdns.Msg, udp bool) *mdns.Msg {
	resp.Id = req.Id
	resp.Response = true
	resp.Opcode = req.Opcode
	resp.RecursionDesired = req.RecursionDesired
	resp.RecursionAvailable = true
	resp.CheckingDisabled = req.CheckingDisabled
	resp.Question = req.Question
	extra := resp.Extra[:0:0]
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype != mdns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	resp.Extra = extra
	size := mdns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		o := &mdns.OPT{Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeOPT}}
		o.SetUDPSize(serverUDPSize)
		o.SetDo(opt.Do())
		resp.Extra = append(resp.Extra, o)
		size = max(mdns.MinMsgSize, min(int(opt.UDPSize()), serverUDPSize))
	} else if resp.Rcode > 0xF {
		resp.Rcode = mdns.RcodeServerFailure // extended rcodes need EDNS0
	}
	if !udp {
		size = mdns.MaxMsgSize
	}
	resp.Truncate(size)
	return resp
}
