package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

const (
	defaultTryTimeout = 2 * time.Second
	healthHold        = 30 * time.Second
	upstreamUDPSize   = 1232
)

// errAllFailed is returned when no server of a list gave a usable answer.
var errAllFailed = errors.New("no upstream answered")

// serverHealth is the passive health of one upstream server.
type serverHealth struct {
	downUntil time.Time
	lastErr   string
	ok, fail  uint64
}

// healthTable tracks passive health per server. It is shared by every
// group, the bypass and the original handler, and survives Apply.
type healthTable struct {
	clock func() time.Time
	mu    sync.Mutex
	m     map[netip.AddrPort]*serverHealth
}

func newHealthTable(clock func() time.Time) *healthTable {
	return &healthTable{clock: clock, m: map[netip.AddrPort]*serverHealth{}}
}

func (t *healthTable) get(s netip.AddrPort) *serverHealth {
	h := t.m[s]
	if h == nil {
		h = &serverHealth{}
		t.m[s] = h
	}
	return h
}

// order returns the servers not marked down, in order; when every server is
// down it returns them all, so a recovered one is found.
func (t *healthTable) order(servers []netip.AddrPort) []netip.AddrPort {
	now := t.clock()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]netip.AddrPort, 0, len(servers))
	for _, s := range servers {
		if h := t.m[s]; h == nil || !now.Before(h.downUntil) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return servers
	}
	return out
}

func (t *healthTable) markDown(s netip.AddrPort, err error) {
	now := t.clock()
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.get(s)
	h.downUntil = now.Add(healthHold)
	h.lastErr = err.Error()
	h.fail++
}

func (t *healthTable) markUp(s netip.AddrPort) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.get(s)
	h.downUntil = time.Time{}
	h.ok++
}

// exchanger sends queries to upstream servers over sockets from dial.
type exchanger struct {
	dial       DialFunc
	tryTimeout time.Duration
	health     *healthTable
	log        *slog.Logger
}

// exchange tries servers in order (skipping those marked down unless all
// are) and returns the first usable answer: any response except SERVFAIL,
// REFUSED and NOTIMP. Timeouts and socket errors mark a server down for
// healthHold; error rcodes move to the next server without marking it.
func (x *exchanger) exchange(ctx context.Context, servers []netip.AddrPort, q *mdns.Msg) (*mdns.Msg, netip.AddrPort, error) {
	if len(servers) == 0 {
		return nil, netip.AddrPort{}, errAllFailed
	}
	out := prepareUpstreamQuery(q)
	var lastErr error = errAllFailed
	for _, s := range x.health.order(servers) {
		if ctx.Err() != nil {
			return nil, netip.AddrPort{}, ctx.Err()
		}
		resp, err := x.exchangeOne(ctx, s, out)
		if err != nil {
			if ctx.Err() == nil { // our caller giving up says nothing about s
				x.health.markDown(s, err)
			}
			x.log.Debug("upstream failed", "server", s, "name", q.Question[0].Name, "err", err)
			lastErr = fmt.Errorf("%s: %w", s, err)
			continue
		}
		x.health.markUp(s)
		switch resp.Rcode {
		case mdns.RcodeServerFailure, mdns.RcodeRefused, mdns.RcodeNotImplemented:
			lastErr = fmt.Errorf("%s: rcode %s", s, mdns.RcodeToString[resp.Rcode])
			continue
		}
		return resp, s, nil
	}
	return nil, netip.AddrPort{}, lastErr
}

// prepareUpstreamQuery copies q with a fresh ID and an EDNS0 buffer of
// upstreamUDPSize (keeping the client's DO bit).
func prepareUpstreamQuery(q *mdns.Msg) *mdns.Msg {
	out := new(mdns.Msg)
	out.Id = mdns.Id()
	out.Opcode = mdns.OpcodeQuery
	out.RecursionDesired = true
	out.CheckingDisabled = q.CheckingDisabled
	out.Question = []mdns.Question{q.Question[0]}
	do := false
	if opt := q.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	out.SetEdns0(upstreamUDPSize, do)
	return out
}

// exchangeOne asks one server over UDP and retries over TCP when the UDP
// answer is truncated.
func (x *exchanger) exchangeOne(ctx context.Context, s netip.AddrPort, q *mdns.Msg) (*mdns.Msg, error) {
	resp, err := x.try(ctx, "udp", s, q)
	if err != nil || !resp.Truncated {
		return resp, err
	}
	tresp, terr := x.try(ctx, "tcp", s, q)
	if terr != nil {
		x.log.Debug("tcp retry after truncation failed", "server", s, "err", terr)
		return resp, nil // the truncated answer; the client may retry over TCP
	}
	return tresp, nil
}

func (x *exchanger) try(ctx context.Context, network string, s netip.AddrPort, q *mdns.Msg) (*mdns.Msg, error) {
	tctx, cancel := context.WithTimeout(ctx, x.tryTimeout)
	defer cancel()
	c, err := x.dial(tctx, network, s.String())
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", network, err)
	}
	defer c.Close()
	if dl, ok := tctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(tctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	co := &mdns.Conn{Conn: c, UDPSize: upstreamUDPSize}
	if err := co.WriteMsg(q); err != nil {
		return nil, fmt.Errorf("write %s: %w", network, err)
	}
	for {
		resp, err := co.ReadMsg()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, fmt.Errorf("%s timeout: %w", network, err)
			}
			return nil, fmt.Errorf("read %s: %w", network, err)
		}
		if resp.Id != q.Id || len(resp.Question) != 1 || !sameQuestion(resp.Question[0], q.Question[0]) {
			if network == "udp" {
				continue // stray or spoofed datagram: keep waiting
			}
			return nil, errors.New("reply does not match query")
		}
		return resp, nil
	}
}

func sameQuestion(a, b mdns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && lowerName(a.Name) == lowerName(b.Name)
}

// groupHandler forwards to one nameserver group (priority 50 or 1) or to
// the original nameservers (priority -100). It passes when no server gives
// a usable answer.
type groupHandler struct {
	name    string // "group:ID" or "original"
	servers []netip.AddrPort
	x       *exchanger
	timeout time.Duration // bounds one query across all servers
}

func (h *groupHandler) Name() string { return h.name }

func (h *groupHandler) ServeDNS(ctx context.Context, q *mdns.Msg) (*mdns.Msg, string) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	resp, s, err := h.x.exchange(ctx, h.servers, q)
	if err != nil {
		return nil, ""
	}
	return resp, "upstream " + s.String()
}
