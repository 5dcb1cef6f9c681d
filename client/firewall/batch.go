package firewall

// Batches. wireguard-go hands the TUN up to 128 packets per read and
// writes each peer's decrypted packets in batches, and in bulk transfers
// most of a batch is one flow. InboundBatch and OutboundBatch judge a batch
// exactly as Inbound/Outbound would judge its packets one by one, with one
// shortcut: a packet of the same tracked flow as the batch's previous
// packet, under the same rule table, passes without another conntrack
// lookup, clock read or counter update (the run's count is added once).
//
// Why that is the same verdict: the previous packet found the flow's entry
// live and allowed under this table, and refreshed its expiry moments ago;
// the entry can only be cut by a newer table (checked per packet: the
// table pointer must not change) or by expiry (not within a batch). The
// skipped per-packet update only moves state on TCP SYN, FIN and RST (those
// packets take the full path) and on the first reply (which the previous
// packet, in the same direction, already made). Fragments and ICMP take
// the full path.

// InboundBatch judges packets decrypted from peers: pass[i] says whether
// pkts[i] may reach the host. len(pass) must be at least len(pkts).
func (f *Filter) InboundBatch(pkts [][]byte, pass []bool) { f.filterBatch(In, pkts, pass) }

// OutboundBatch judges packets from the host, before they are encrypted.
func (f *Filter) OutboundBatch(pkts [][]byte, pass []bool) { f.filterBatch(Out, pkts, pass) }

// flowRun is the batch's current run of one tracked flow's packets.
type flowRun struct {
	k   ctKey
	t   *table    // the table the run was judged on
	ctr *counters // nil: no run
	n   uint64    // packets passed by the shortcut, not yet counted
}

func (r *flowRun) flush(dir Direction) {
	if r.n > 0 {
		r.ctr.add(dir, r.n)
		r.n = 0
	}
}

func (f *Filter) filterBatch(dir Direction, pkts [][]byte, pass []bool) {
	var run flowRun
	for i, pkt := range pkts {
		var p packet
		if !decode(pkt, &p, false) {
			run.flush(dir)
			run = flowRun{}
			f.dropMalformed(dir)
			pass[i] = false
			continue
		}
		t := f.tbl.Load()
		if run.ctr != nil && run.t == t && sameFlow(dir, &p, &run.k) {
			run.n++
			pass[i] = true
			continue
		}
		run.flush(dir)
		var k ctKey
		ok, ctr := f.judge(dir, &p, t, &k)
		pass[i] = ok
		run = flowRun{}
		if ok && ctr != nil && shortcutOK(&p) {
			run = flowRun{k: k, t: t, ctr: ctr}
		}
	}
	run.flush(dir)
}

// shortcutOK says whether packets like p may follow it through the
// shortcut: TCP without SYN, FIN or RST, and UDP.
func shortcutOK(p *packet) bool {
	switch p.cls {
	case clsTCP:
		return p.tcpFlags&(tcpSYN|tcpFIN|tcpRST) == 0
	case clsUDP:
		return true
	}
	return false
}

// sameFlow reports whether p is an unfragmented TCP (without SYN, FIN or
// RST) or UDP packet of flow k in direction dir.
func sameFlow(dir Direction, p *packet, k *ctKey) bool {
	if p.fragment || !shortcutOK(p) {
		return false
	}
	remote, local, rport, lport := p.src, p.dst, p.sport, p.dport
	if dir == Out {
		remote, local, rport, lport = p.dst, p.src, p.dport, p.sport
	}
	// v4 too: an IPv6 packet between IPv4-mapped addresses has the same
	// 16 bytes but is another flow.
	return rport == k.rport && lport == k.lport && p.proto == k.proto && remote.Is4() == k.v4 &&
		remote.As16() == k.remote && local.As16() == k.local
}
