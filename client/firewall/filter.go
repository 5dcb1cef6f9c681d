package firewall

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Filter is a stateful packet filter; it implements client/wg's
// PacketFilter. Create it with New; it denies everything until Apply.
type Filter struct {
	log   *slog.Logger
	now   func() time.Time
	tbl   atomic.Pointer[table]
	ct    *conntrack
	other counters // remote addresses outside the rule set, malformed packets

	applyMu sync.Mutex // serialises Apply (compile + swap)
	gen     uint64     // under applyMu

	malformed, limited atomic.Uint64 // dropped: undecodable; conntrack limit
	lastWarn           atomic.Int64

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// New returns a Filter with an empty rule set: every packet is dropped, in
// both directions, until the first Apply. It starts the conntrack GC
// goroutine (see WithGCInterval); Close stops it.
func New(log *slog.Logger, opts ...Option) *Filter {
	o := options{now: time.Now, gcInterval: defaultGCInterval,
		maxTotal: defaultMaxTotal, maxPerPeer: defaultMaxPerPeer}
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Filter{
		log:  log.With("component", "firewall"),
		now:  o.now,
		ct:   newConntrack(o.maxTotal, o.maxPerPeer),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	f.tbl.Store(compile(Config{}, 0, nil, &f.other))
	if o.gcInterval > 0 {
		go f.gcLoop(o.gcInterval)
	} else {
		close(f.done)
	}
	return f
}

func (f *Filter) gcLoop(every time.Duration) {
	defer close(f.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.ct.gc(f.now().UnixNano())
		}
	}
}

// Close stops the GC goroutine and waits for it. Idempotent. The filter
// keeps filtering after Close (entries then expire lazily).
func (f *Filter) Close() {
	f.closeOnce.Do(func() { close(f.stop) })
	<-f.done
}

// Apply compiles cfg and swaps it in atomically: every packet is judged
// entirely by the old or entirely by the new rules. Tracked flows are
// re-checked against the new rules at their next packet (as if that flow
// were opened again in its original direction) and cut if no longer
// allowed. Apply may be called with identical configs.
func (f *Filter) Apply(cfg Config) {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	f.gen++
	t := compile(cfg, f.gen, f.tbl.Load(), &f.other)
	f.tbl.Store(t)
	f.log.Debug("rules applied", "gen", t.gen, "rules", len(t.rules),
		"addresses", len(t.byAddr), "routed", len(t.routed))
}

// Inbound filters a packet decrypted from a peer, before the host sees it.
func (f *Filter) Inbound(pkt []byte) bool { return f.filter(In, pkt) }

// Outbound filters a packet from the host, before it is encrypted.
func (f *Filter) Outbound(pkt []byte) bool { return f.filter(Out, pkt) }

func (f *Filter) filter(dir Direction, pkt []byte) bool {
	var p packet
	if !decode(pkt, &p, false) {
		f.dropMalformed(dir)
		return false
	}
	ok, _ := f.judge(dir, &p, f.tbl.Load(), nil)
	return ok
}

func (f *Filter) dropMalformed(dir Direction) {
	f.malformed.Add(1)
	f.other.count(dir, false)
}

// judge decides the decoded packet p on t and counts it. It returns the
// verdict and, for a packet of a live tracked flow, its counters and (when
// flow is not nil) its key in *flow, so a batch can let the flow's next
// packets through without another lookup (batch.go).
func (f *Filter) judge(dir Direction, p *packet, t *table, flow *ctKey) (bool, *counters) {
	remote, local, rport, lport := p.src, p.dst, p.sport, p.dport
	if dir == Out {
		remote, local, rport, lport = p.dst, p.src, p.dport, p.sport
	}
	if p.fragment {
		// No ports: only a Proto=All rule without ports can allow it.
		v := t.decide(dir, remote, local, clsOther, 0)
		t.counters(remote).count(dir, v.ok)
		return v.ok, nil
	}
	k := makeKey(remote, local, rport, lport, p.proto)
	now := f.now().UnixNano()
	if ctr, ok := f.lookup(t, k, p, dir, now, true); ok {
		ctr.count(dir, true)
		if flow != nil {
			*flow = k
		}
		return true, ctr
	}
	if p.icmpKind == icmpError && f.related(t, p, dir, now) {
		t.counters(remote).count(dir, true)
		return true, nil
	}
	ctr := t.counters(remote)
	v := t.decide(dir, remote, local, p.cls, p.dport)
	if !v.ok {
		ctr.count(dir, false)
		return false, nil
	}
	if tracks(p) {
		e := &ctEntry{gen: t.gen, origIn: dir == In, cls: p.cls, ctr: ctr,
			expires: now + int64(timeout(p.cls, stNew))}
		if reason := f.ct.insert(k, e, now); reason != "" {
			f.limited.Add(1)
			f.warnLimited(remote, reason, now)
			ctr.count(dir, false)
			return false, nil
		}
	}
	ctr.count(dir, true)
	return true, nil
}

// tracks reports whether an allowed new packet opens a conntrack entry.
func tracks(p *packet) bool {
	switch p.cls {
	case clsTCP:
		return p.tcpFlags&tcpRST == 0
	case clsICMP:
		return p.icmpKind == icmpEcho
	}
	return true
}

// lookup finds k's live entry, re-checking it against t if t is newer than
// the entry, and (if update) advances it with p. It returns the remote's
// counters.
func (f *Filter) lookup(t *table, k ctKey, p *packet, dir Direction, now int64, update bool) (*counters, bool) {
	s := f.ct.shard(&k.remote)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[k]
	if e == nil {
		return nil, false
	}
	if e.expires <= now {
		f.ct.del(s, k)
		return nil, false
	}
	if e.gen != t.gen {
		dir0, port0 := Out, k.rport
		if e.origIn {
			dir0, port0 = In, k.lport
		}
		remote, local := k.addrs()
		if !t.decide(dir0, remote, local, e.cls, port0).ok {
			f.ct.del(s, k)
			return nil, false
		}
		e.gen, e.ctr = t.gen, t.counters(remote)
	}
	if update {
		e.update(p, dir == In, now)
	}
	return e.ctr, true
}

// related reports whether ICMP error p quotes a live tracked flow. The
// quoted packet travelled the other way, to the error's destination.
func (f *Filter) related(t *table, p *packet, dir Direction, now int64) bool {
	var q packet
	if !decode(p.quote, &q, true) || q.fragment || q.src != p.dst {
		return false
	}
	k := makeKey(q.dst, q.src, q.dport, q.sport, q.proto)
	if dir == Out {
		k = makeKey(q.src, q.dst, q.sport, q.dport, q.proto)
	}
	_, ok := f.lookup(t, k, nil, dir, now, false)
	return ok
}

func (f *Filter) warnLimited(remote netip.Addr, reason string, now int64) {
	last := f.lastWarn.Load()
	if now-last < int64(time.Minute) || !f.lastWarn.CompareAndSwap(last, now) {
		return
	}
	f.log.Warn("new flow dropped", "remote", remote, "reason", reason,
		"dropped_total", f.limited.Load())
}

// Stats returns packet counters per remote address in the current rule set
// (single addresses listed in rules' Peers); every other remote (routed
// prefixes, unknown sources) and undecodable packets are summed under the
// zero Addr.
func (f *Filter) Stats() map[netip.Addr]PeerCounters {
	t := f.tbl.Load()
	out := make(map[netip.Addr]PeerCounters, len(t.byAddr)+1)
	for a, ai := range t.byAddr {
		out[a] = ai.ctr.snapshot()
	}
	out[netip.Addr{}] = f.other.snapshot()
	return out
}

func (c *counters) snapshot() PeerCounters {
	return PeerCounters{InAllowed: c.inOK.Load(), InDropped: c.inDrop.Load(),
		OutAllowed: c.outOK.Load(), OutDropped: c.outDrop.Load()}
}

// Trace reports which rule decides a new packet src → dst (port is the
// destination port; ignored for ICMP; proto All means a protocol without
// ports). It is inbound if dst is this agent, or dst is in Config.Routed
// and src is not this agent; otherwise outbound. Conntrack is not
// consulted.
func (f *Filter) Trace(src, dst netip.Addr, proto Proto, port uint16) Decision {
	t := f.tbl.Load()
	c := clsOther
	switch proto {
	case TCP:
		c = clsTCP
	case UDP:
		c = clsUDP
	case ICMP:
		c = clsICMP
	}
	var v verdict
	if isSelf(t, dst) || (t.isRouted(dst) && !isSelf(t, src)) {
		v = t.decide(In, src, dst, c, port)
	} else {
		v = t.decide(Out, dst, src, c, port)
	}
	d := Decision{Allowed: v.ok, Reason: v.reason}
	if v.rule >= 0 {
		d.RuleID, d.PolicyID = t.rules[v.rule].id, t.rules[v.rule].policyID
	}
	return d
}

func isSelf(t *table, a netip.Addr) bool {
	for _, s := range t.self {
		if s == a {
			return true
		}
	}
	return false
}
