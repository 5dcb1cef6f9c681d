package firewall

import (
	"math/rand"
	"reflect"
	"testing"
	"time"
)

// batchCfgs are the rule sets the equivalence test switches between.
func batchCfgs() []Config {
	return []Config{
		{Rules: []Rule{
			{ID: "out-all", Direction: Out, Proto: All, Peers: pfx(peerA, peerB, peer6)},
			{ID: "in-udp", Direction: In, Proto: UDP, Ports: []PortRange{{53, 53}}, Peers: pfx(peerA)},
		}},
		{Rules: []Rule{
			{ID: "out-tcp", Direction: Out, Proto: TCP, Ports: []PortRange{{443, 443}}, Peers: pfx(peerA)},
			{ID: "in-all", Direction: In, Proto: All, Peers: pfx(peerB)},
		}},
		{}, // deny all
	}
}

// randomPacket is one of a few flows' packets in either direction, with
// random TCP flags, or an ICMP echo, a fragment or garbage.
func randomPacket(r *rand.Rand) (Direction, []byte) {
	peers := []string{peerA, peerB}
	peer := peers[r.Intn(2)]
	dir := Direction(r.Intn(2))
	src, dst := self, peer
	sport, dport := uint16(40000+r.Intn(2)), []uint16{443, 53, 8080}[r.Intn(3)]
	if dir == In {
		src, dst, sport, dport = peer, self, dport, sport
	}
	switch n := r.Intn(20); {
	case n < 11:
		flags := []uint8{tcpACK, tcpACK, tcpACK, tcpACK, tcpSYN, tcpSYN | tcpACK, tcpFIN | tcpACK, tcpRST}[r.Intn(8)]
		return dir, tcp(src, dst, sport, dport, flags)
	case n < 17:
		return dir, udp(src, dst, sport, dport)
	case n < 18:
		return dir, ping(src, dst, 7, dir == In)
	case n < 19:
		p := udp(src, dst, sport, dport)
		p[6], p[7] = 0x00, 0x10 // fragment offset > 0
		return dir, p
	}
	return dir, []byte{0x45, 0, 0}
}

// TestBatchMatchesOneByOne feeds the same random traffic to two filters,
// one packet at a time and in batches, switching rule sets and moving the
// clock between batches: every verdict and every counter must agree.
func TestBatchMatchesOneByOne(t *testing.T) {
	cfgs := batchCfgs()
	one, clk1 := newTest(t, cfgs[0])
	bat, clk2 := newTest(t, cfgs[0])
	r := rand.New(rand.NewSource(1))
	for round := 0; round < 3000; round++ {
		if r.Intn(10) == 0 {
			c := cfgs[r.Intn(len(cfgs))]
			c.Self = pfx(self, self6)
			one.Apply(c)
			bat.Apply(c)
		}
		if r.Intn(5) == 0 {
			d := time.Duration(r.Intn(40)) * time.Second
			clk1.Advance(d)
			clk2.Advance(d)
		}
		dir := Direction(r.Intn(2))
		var pkts [][]byte
		for n := 1 + r.Intn(16); len(pkts) < n; {
			d, p := randomPacket(r)
			if d != dir {
				continue
			}
			// Runs of one flow are what the shortcut is for.
			for k := r.Intn(4); k >= 0 && len(pkts) < n; k-- {
				pkts = append(pkts, p)
			}
		}
		want := make([]bool, len(pkts))
		for i, p := range pkts {
			if dir == In {
				want[i] = one.Inbound(p)
			} else {
				want[i] = one.Outbound(p)
			}
		}
		got := make([]bool, len(pkts))
		if dir == In {
			bat.InboundBatch(pkts, got)
		} else {
			bat.OutboundBatch(pkts, got)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d (%v): batch %v, one by one %v", round, dir, got, want)
		}
		if a, b := one.Stats(), bat.Stats(); !reflect.DeepEqual(a, b) {
			t.Fatalf("round %d: counters differ:\none by one %+v\nbatch      %+v", round, a, b)
		}
		if a, b := flows(one), flows(bat); !reflect.DeepEqual(a, b) {
			t.Fatalf("round %d: conntrack differs:\none by one %+v\nbatch      %+v", round, a, b)
		}
	}
	if one.malformed.Load() != bat.malformed.Load() || one.malformed.Load() == 0 {
		t.Fatalf("malformed: %d vs %d", one.malformed.Load(), bat.malformed.Load())
	}
}

// flowState is a conntrack entry without its counters pointer.
type flowState struct {
	gen     uint64
	origIn  bool
	state   uint8
	expires int64
}

// flows snapshots f's conntrack table.
func flows(f *Filter) map[ctKey]flowState {
	out := map[ctKey]flowState{}
	for i := range f.ct.shards {
		s := &f.ct.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			out[k] = flowState{e.gen, e.origIn, e.state, e.expires}
		}
		s.mu.Unlock()
	}
	return out
}

// A rule change that lands in the middle of a batch cuts the flow at its
// next packet, as it does one packet at a time: the shortcut must not
// carry a verdict across tables.
func TestBatchRuleChangeMidBatch(t *testing.T) {
	cfg := Config{Self: pfx(self), Rules: []Rule{{ID: "a", Direction: Out, Proto: TCP, Peers: pfx(peerA)}}}
	var f *Filter
	clk := newFakeClock()
	calls, applyAt := 0, -1
	f = New(nil, WithGCInterval(0), WithClock(func() time.Time {
		calls++
		if calls == applyAt {
			f.Apply(Config{Self: pfx(self)}) // deny all, while judging the batch's first packet
		}
		return clk.Now()
	}))
	t.Cleanup(f.Close)
	f.Apply(cfg)
	mustPass(t, f.Outbound(tcp(self, peerA, 40000, 443, tcpSYN)), "syn")
	mustPass(t, f.Inbound(tcp(peerA, self, 443, 40000, tcpSYN|tcpACK)), "syn-ack")
	data := tcp(peerA, self, 443, 40000, tcpACK)
	pass := make([]bool, 3)
	applyAt = calls + 1
	f.InboundBatch([][]byte{data, data, data}, pass)
	if !reflect.DeepEqual(pass, []bool{true, false, false}) {
		t.Fatalf("verdicts %v, want the first packet (judged before the change) through and the rest cut", pass)
	}
}

// An IPv6 packet between the IPv4-mapped forms of a tracked IPv4 flow's
// addresses is another flow: it must not ride the IPv4 flow's run.
func TestBatchMappedAddressIsAnotherFlow(t *testing.T) {
	f, _ := newTest(t, Config{Rules: []Rule{{ID: "a", Direction: Out, Proto: TCP, Peers: pfx(peerA)}}})
	mustPass(t, f.Outbound(tcp(self, peerA, 40000, 443, tcpSYN)), "syn")
	mustPass(t, f.Inbound(tcp(peerA, self, 443, 40000, tcpSYN|tcpACK)), "syn-ack")
	v4 := tcp(peerA, self, 443, 40000, tcpACK)
	mapped := tcp("::ffff:"+peerA, "::ffff:"+self, 443, 40000, tcpACK)
	want := []bool{f.Inbound(v4), f.Inbound(mapped)}
	pass := make([]bool, 2)
	f.InboundBatch([][]byte{v4, mapped}, pass)
	if !reflect.DeepEqual(pass, want) || want[1] {
		t.Fatalf("batch %v, one by one %v (the mapped packet must be judged on its own and dropped)", pass, want)
	}
}

func BenchmarkEstablishedBatch(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(benchName(n), func(b *testing.B) {
			f, _ := newTest(b, benchConfig(n))
			syn := tcp(self, peerA, 40000, 443, tcpSYN)
			reply := tcp(peerA, self, 443, 40000, tcpACK)
			if !f.Outbound(syn) || !f.Inbound(reply) {
				b.Fatal("flow not established")
			}
			const batch = 64
			pkts := make([][]byte, batch)
			for i := range pkts {
				pkts[i] = reply
			}
			pass := make([]bool, batch)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				f.InboundBatch(pkts, pass)
			}
			if !pass[batch-1] {
				b.Fatal("dropped")
			}
		})
	}
}
