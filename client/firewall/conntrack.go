package firewall

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Timeouts (idle) per protocol and state.
const (
	tcpSynTimeout   = 30 * time.Second // opened, no reply yet
	tcpEstTimeout   = 2 * time.Hour
	tcpCloseTimeout = 2 * time.Minute // after FIN or RST
	udpNewTimeout   = 30 * time.Second
	udpEstTimeout   = 2 * time.Minute
	icmpTimeout     = 30 * time.Second

	defaultMaxTotal   = 65536
	defaultMaxPerPeer = 4096
	defaultGCInterval = 30 * time.Second
	sweepEvery        = int64(time.Second) // at most one on-demand sweep per shard per second
	numShards         = 256
)

// Connection states.
const (
	stNew uint8 = iota // opened, nothing seen from the other side
	stEstablished
	stClosing // TCP FIN or RST seen
)

// ctKey is a flow's 5-tuple oriented by side, so both directions of a flow
// share it: remote is the peer side (source of Inbound, destination of
// Outbound packets), local this agent or the network it routes for.
//
// Addresses are stored as 16 bytes and the struct has no padding, so the
// map hashes it as one block of memory (netip.Addr fields would be hashed
// field by field, which doubled the cost of a new flow).
type ctKey struct {
	remote, local [16]byte
	rport, lport  uint16
	proto         uint8
	v4            bool // both addresses are IPv4
	//lint:ignore U1000 named, not blank: a blank field would make the map hash field by field
	_pad [2]byte
}

func makeKey(remote, local netip.Addr, rport, lport uint16, proto uint8) ctKey {
	return ctKey{remote: remote.As16(), local: local.As16(), rport: rport, lport: lport,
		proto: proto, v4: remote.Is4()}
}

func (k *ctKey) addrs() (remote, local netip.Addr) {
	remote, local = netip.AddrFrom16(k.remote), netip.AddrFrom16(k.local)
	if k.v4 {
		remote, local = remote.Unmap(), local.Unmap()
	}
	return remote, local
}

type ctEntry struct {
	gen     uint64 // table generation the flow was last checked against
	origIn  bool   // opened by an Inbound packet
	state   uint8
	cls     class
	expires int64     // unix nanoseconds
	ctr     *counters // the remote's counters in table gen
}

func timeout(c class, state uint8) time.Duration {
	switch c {
	case clsTCP:
		switch state {
		case stNew:
			return tcpSynTimeout
		case stEstablished:
			return tcpEstTimeout
		}
		return tcpCloseTimeout
	case clsICMP:
		return icmpTimeout
	}
	if state == stNew {
		return udpNewTimeout
	}
	return udpEstTimeout
}

// update advances e for a packet (fromRemote: an Inbound packet) and
// pushes its expiry.
func (e *ctEntry) update(p *packet, fromRemote bool, now int64) {
	reply := fromRemote != e.origIn
	switch {
	case e.cls == clsTCP && p.tcpFlags&(tcpFIN|tcpRST) != 0:
		e.state = stClosing
	case e.cls == clsTCP && e.state == stClosing && !reply && p.tcpFlags&(tcpSYN|tcpACK) == tcpSYN:
		e.state = stNew // the initiator reuses the tuple
	case reply && e.state == stNew:
		e.state = stEstablished
	}
	e.expires = now + int64(timeout(e.cls, e.state))
}

type shard struct {
	mu        sync.Mutex
	m         map[ctKey]*ctEntry
	perRemote map[[16]byte]int32
	lastSweep int64
	_         [64]byte // keep neighbouring shards' locks off one cache line
}

// conntrack is a bounded flow table, sharded by remote address so that a
// remote's per-remote count lives under the lock of the shard holding all
// of its flows.
type conntrack struct {
	shards     [numShards]shard
	total      atomic.Int64
	maxTotal   int64
	maxPerPeer int32
}

func newConntrack(maxTotal, maxPerPeer int) *conntrack {
	c := &conntrack{maxTotal: int64(maxTotal), maxPerPeer: int32(maxPerPeer)}
	for i := range c.shards {
		c.shards[i].m = map[ctKey]*ctEntry{}
		c.shards[i].perRemote = map[[16]byte]int32{}
	}
	return c
}

func (c *conntrack) shard(b *[16]byte) *shard {
	var h uint64
	for i := 0; i < 16; i += 8 {
		h ^= uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24 |
			uint64(b[i+4])<<32 | uint64(b[i+5])<<40 | uint64(b[i+6])<<48 | uint64(b[i+7])<<56
	}
	h *= 0x9E3779B97F4A7C15
	return &c.shards[h>>56]
}

// del removes k; the caller holds s.mu.
func (c *conntrack) del(s *shard, k ctKey) {
	if _, ok := s.m[k]; !ok {
		return
	}
	delete(s.m, k)
	if n := s.perRemote[k.remote] - 1; n > 0 {
		s.perRemote[k.remote] = n
	} else {
		delete(s.perRemote, k.remote)
	}
	c.total.Add(-1)
}

// sweep removes s's expired entries; the caller holds s.mu.
func (c *conntrack) sweep(s *shard, now int64) {
	s.lastSweep = now
	for k, e := range s.m {
		if e.expires <= now {
			c.del(s, k)
		}
	}
}

// insert adds a flow unless the table or the remote is at its limit; it
// returns "" or the reason it refused.
func (c *conntrack) insert(k ctKey, e *ctEntry, now int64) string {
	s := c.shard(&k.remote)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; ok { // a concurrent packet created it
		s.m[k] = e
		return ""
	}
	full := func() string {
		if s.perRemote[k.remote] >= c.maxPerPeer {
			return reasonPeerFull
		}
		if c.total.Load() >= c.maxTotal {
			return reasonTableFull
		}
		return ""
	}
	r := full()
	if r != "" && now-s.lastSweep >= sweepEvery {
		c.sweep(s, now)
		r = full()
	}
	if r != "" {
		return r
	}
	s.m[k] = e
	s.perRemote[k.remote]++
	c.total.Add(1)
	return ""
}

// gc sweeps every shard once.
func (c *conntrack) gc(now int64) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		c.sweep(s, now)
		s.mu.Unlock()
	}
}
