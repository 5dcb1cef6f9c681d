package firewall

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

func outWeb() Config {
	return Config{Rules: []Rule{{ID: "web/out", Direction: Out, Proto: TCP,
		Ports: []PortRange{{443, 443}}, Peers: pfx(peerA, peer6)}}}
}

func TestTCPReplyPasses(t *testing.T) {
	for _, fam := range [][2]string{{self, peerA}, {self6, peer6}} {
		local, remote := fam[0], fam[1]
		f, _ := newTest(t, outWeb())
		mustDrop(t, f.Inbound(tcp(remote, local, 443, 40000, tcpSYN|tcpACK)), "SYN-ACK before SYN")
		mustPass(t, f.Outbound(tcp(local, remote, 40000, 443, tcpSYN)), "outbound SYN")
		mustPass(t, f.Inbound(tcp(remote, local, 443, 40000, tcpSYN|tcpACK)), "inbound SYN-ACK")
		mustPass(t, f.Outbound(tcp(local, remote, 40000, 443, tcpACK)), "outbound ACK")
		mustDrop(t, f.Inbound(tcp(remote, local, 443, 40001, tcpACK)), "other local port")
		mustDrop(t, f.Inbound(tcp(remote, local, 444, 40000, tcpACK)), "other remote port")
		mustDrop(t, f.Inbound(udp(remote, local, 443, 40000)), "other protocol")
		mustDrop(t, f.Inbound(tcp(remote, local, 50000, 443, tcpSYN)), "unsolicited inbound SYN")
	}
}

func TestUnsolicitedInbound(t *testing.T) {
	f, _ := newTest(t, outWeb())
	mustDrop(t, f.Inbound(tcp(peerA, self, 443, 40000, tcpSYN)), "inbound SYN from peer with out rule only")
	mustDrop(t, f.Inbound(udp(peerA, self, 443, 40000)), "inbound UDP")
	mustDrop(t, f.Inbound(ping(peerA, self, 1, true)), "unsolicited echo reply")
}

func TestICMPEchoAndErrors(t *testing.T) {
	f, _ := newTest(t, Config{Routed: pfx("192.168.0.0/16"), Rules: []Rule{
		{Direction: Out, Proto: ICMP, Peers: pfx(peerA)},
		{Direction: Out, Proto: UDP, Peers: pfx(peerA)},
		{Direction: In, Proto: ICMP, Peers: pfx(peerB)},
	}})
	mustPass(t, f.Outbound(ping(self, peerA, 9, false)), "echo request out")
	mustPass(t, f.Inbound(ping(peerA, self, 9, true)), "echo reply in")
	mustDrop(t, f.Inbound(ping(peerA, self, 10, true)), "echo reply, other id")
	mustPass(t, f.Inbound(ping(peerB, self, 3, false)), "echo request in (rule)")
	mustPass(t, f.Outbound(ping(self, peerB, 3, true)), "echo reply out")

	// port unreachable from A quoting our UDP datagram
	q := udp(self, peerA, 5000, 53)
	mustPass(t, f.Outbound(q), "udp out")
	unreach := ipPkt(peerA, self, ipICMP, icmpMsg(3, 3, 0, q))
	mustPass(t, f.Inbound(unreach), "related ICMP error")
	other := ipPkt(peerA, self, ipICMP, icmpMsg(3, 3, 0, udp(self, peerA, 5001, 53)))
	mustDrop(t, f.Inbound(other), "ICMP error quoting an untracked flow")
	misdirected := ipPkt(peerA, self, ipICMP, icmpMsg(3, 3, 0, udp(peerB, peerA, 5000, 53)))
	mustDrop(t, f.Inbound(misdirected), "ICMP error quoting someone else's packet")
	// quotes our tracked flow but is addressed to a host we route for
	redirected := ipPkt(peerA, "192.168.1.1", ipICMP, icmpMsg(3, 3, 0, q))
	mustDrop(t, f.Inbound(redirected), "ICMP error not addressed to the quoted source")
}

func TestRuleRemovedCutsFlow(t *testing.T) {
	f, _ := newTest(t, outWeb())
	mustPass(t, f.Outbound(tcp(self, peerA, 40000, 443, tcpSYN)), "SYN")
	mustPass(t, f.Inbound(tcp(peerA, self, 443, 40000, tcpSYN|tcpACK)), "SYN-ACK")

	f.Apply(Config{Self: pfx(self), Rules: outWeb().Rules}) // same rules: flow survives the re-check
	mustPass(t, f.Inbound(tcp(peerA, self, 443, 40000, tcpACK)), "after identical Apply")

	f.Apply(Config{Self: pfx(self)})
	mustDrop(t, f.Inbound(tcp(peerA, self, 443, 40000, tcpACK)), "reply after rule removed")
	mustDrop(t, f.Outbound(tcp(self, peerA, 40000, 443, tcpACK)), "outbound after rule removed")

	f.Apply(Config{Self: pfx(self), Rules: outWeb().Rules})
	mustDrop(t, f.Inbound(tcp(peerA, self, 443, 40000, tcpACK)), "entry was removed, not just hidden")

	// an added drop rule cuts a flow too
	mustPass(t, f.Outbound(tcp(self, peerA, 40001, 443, tcpSYN)), "new SYN")
	rules := append(outWeb().Rules, Rule{Direction: Out, Action: Drop, Proto: All, Peers: pfx("100.64.0.0/24")})
	f.Apply(Config{Self: pfx(self), Rules: rules})
	mustDrop(t, f.Inbound(tcp(peerA, self, 443, 40001, tcpSYN|tcpACK)), "after drop rule")
}

func TestSelfChangeCutsInboundFlow(t *testing.T) {
	in := Config{Self: pfx(self), Rules: []Rule{{Direction: In, Proto: UDP, Peers: pfx(peerA)}}}
	f, _ := newTest(t, in)
	mustPass(t, f.Inbound(udp(peerA, self, 1, 2)), "in")
	f.Apply(Config{Self: pfx("100.64.0.99"), Rules: in.Rules})
	mustDrop(t, f.Outbound(udp(self, peerA, 2, 1)), "reply after our address moved")
}

// TestApplyAtomic runs packets against concurrent Applies (meant for -race).
// Config a allows TCP 80 from A; b allows 80 too but drops everything else
// from A. Under neither may TCP 443 from A pass.
func TestApplyAtomic(t *testing.T) {
	a := Config{Self: pfx(self), Rules: []Rule{{Direction: In, Proto: TCP, Ports: []PortRange{{80, 80}}, Peers: pfx(peerA)}}}
	b := Config{Self: pfx(self), Rules: append(append([]Rule(nil), a.Rules...),
		Rule{Direction: In, Action: Drop, Proto: TCP, Ports: []PortRange{{81, 65535}}, Peers: pfx("100.64.0.0/16")})}
	f, _ := newTest(t, a)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				f.Apply(a)
				return
			default:
			}
			if i%2 == 0 {
				f.Apply(b)
			} else {
				f.Apply(a)
			}
		}
	}()
	var bad sync.Map
	var pw sync.WaitGroup
	for g := 0; g < 4; g++ {
		pw.Add(1)
		go func() {
			defer pw.Done()
			for i := 0; i < 1000; i++ { // 4,000 flows: under the per-remote limit
				port := uint16(10000 + g*5000 + i%5000)
				if !f.Inbound(tcp(peerA, self, port, 80, tcpSYN)) {
					bad.Store("80 dropped", true)
				}
				f.Outbound(tcp(self, peerA, 80, port, tcpSYN|tcpACK))
				if f.Inbound(tcp(peerA, self, port, 443, tcpSYN)) {
					bad.Store("443 passed", true)
				}
				_ = f.Stats()
			}
		}()
	}
	pw.Wait()
	close(stop)
	wg.Wait()
	bad.Range(func(k, _ any) bool { t.Error(k); return true })
}

func TestPerRemoteLimit(t *testing.T) {
	in := Config{Rules: []Rule{{Direction: In, Proto: UDP, Peers: pfx(peerA, peerB, "100.64.0.4")}}}
	f, clk := newTest(t, in, WithLimits(15, 10))
	for i := 0; i < 10; i++ {
		mustPass(t, f.Inbound(udp(peerA, self, uint16(1000+i), 53)), "A within limit")
	}
	mustDrop(t, f.Inbound(udp(peerA, self, 2000, 53)), "A past its limit")
	mustPass(t, f.Inbound(udp(peerA, self, 1003, 53)), "A's existing flow")
	for i := 0; i < 5; i++ {
		mustPass(t, f.Inbound(udp(peerB, self, uint16(1000+i), 53)), "B unaffected by A")
	}
	mustDrop(t, f.Inbound(udp("100.64.0.4", self, 1, 53)), "total limit")
	st := f.Stats()[netip.MustParseAddr(peerA)]
	if st.InDropped != 1 || st.InAllowed != 11 {
		t.Fatalf("A's counters %+v", st)
	}
	if f.limited.Load() != 2 {
		t.Fatalf("limited = %d", f.limited.Load())
	}
	// expired entries are reclaimed when a remote is at its limit
	clk.Advance(udpNewTimeout + time.Second)
	mustPass(t, f.Inbound(udp(peerA, self, 2000, 53)), "A after its flows expired")
	if n := f.ct.total.Load(); n > 6 { // A's 10 were swept: A's new flow + at most B's 5
		t.Fatalf("total = %d after A's sweep", n)
	}
}

func TestExpiry(t *testing.T) {
	cfg := Config{Rules: []Rule{{Direction: Out, Proto: All, Peers: pfx(peerA)}}}
	step := func(t *testing.T, clk *fakeClock, d time.Duration) { clk.Advance(d) }
	t.Run("udp unanswered", func(t *testing.T) {
		f, clk := newTest(t, cfg)
		mustPass(t, f.Outbound(udp(self, peerA, 1, 2)), "out")
		step(t, clk, udpNewTimeout-time.Second)
		mustPass(t, f.Inbound(udp(peerA, self, 2, 1)), "reply within 30 s")
		step(t, clk, udpEstTimeout-time.Second)
		mustPass(t, f.Inbound(udp(peerA, self, 2, 1)), "answered flow within 2 min")
		step(t, clk, udpEstTimeout+time.Second)
		mustDrop(t, f.Inbound(udp(peerA, self, 2, 1)), "answered flow idle > 2 min")
		mustPass(t, f.Outbound(udp(self, peerA, 1, 2)), "reopen")
		step(t, clk, udpNewTimeout+time.Second)
		mustDrop(t, f.Inbound(udp(peerA, self, 2, 1)), "reply after 30 s unanswered")
	})
	t.Run("tcp", func(t *testing.T) {
		f, clk := newTest(t, cfg)
		mustPass(t, f.Outbound(tcp(self, peerA, 1, 2, tcpSYN)), "SYN")
		step(t, clk, tcpSynTimeout+time.Second)
		mustDrop(t, f.Inbound(tcp(peerA, self, 2, 1, tcpSYN|tcpACK)), "SYN-ACK after 30 s")
		mustPass(t, f.Outbound(tcp(self, peerA, 1, 2, tcpSYN)), "SYN again")
		mustPass(t, f.Inbound(tcp(peerA, self, 2, 1, tcpSYN|tcpACK)), "SYN-ACK")
		step(t, clk, tcpEstTimeout-time.Minute)
		mustPass(t, f.Inbound(tcp(peerA, self, 2, 1, tcpACK)), "established, idle < 2 h")
		mustPass(t, f.Outbound(tcp(self, peerA, 1, 2, tcpFIN|tcpACK)), "FIN")
		step(t, clk, tcpCloseTimeout-time.Second)
		mustPass(t, f.Inbound(tcp(peerA, self, 2, 1, tcpFIN|tcpACK)), "FIN reply within 2 min")
		step(t, clk, tcpCloseTimeout+time.Second)
		mustDrop(t, f.Inbound(tcp(peerA, self, 2, 1, tcpACK)), "2 min after FIN")

		mustPass(t, f.Outbound(tcp(self, peerA, 3, 2, tcpSYN)), "SYN")
		mustPass(t, f.Inbound(tcp(peerA, self, 2, 3, tcpSYN|tcpACK)), "SYN-ACK")
		step(t, clk, tcpEstTimeout+time.Second)
		mustDrop(t, f.Inbound(tcp(peerA, self, 2, 3, tcpACK)), "established, idle > 2 h")
	})
	t.Run("icmp", func(t *testing.T) {
		f, clk := newTest(t, cfg)
		mustPass(t, f.Outbound(ping(self, peerA, 5, false)), "echo")
		step(t, clk, icmpTimeout+time.Second)
		mustDrop(t, f.Inbound(ping(peerA, self, 5, true)), "reply after 30 s")
	})
}

func TestStats(t *testing.T) {
	f, _ := newTest(t, Config{Rules: []Rule{{Direction: In, Proto: All, Peers: pfx(peerA, "10.0.0.0/8")}}})
	f.Inbound(udp(peerA, self, 1, 2))
	f.Outbound(udp(self, peerA, 2, 1))
	f.Outbound(udp(self, peerA, 2, 9))
	f.Inbound(udp("10.1.2.3", self, 1, 2))
	f.Inbound(udp("172.16.0.1", self, 1, 2))
	f.Inbound([]byte{0x45})
	st := f.Stats()
	if got, want := st[netip.MustParseAddr(peerA)], (PeerCounters{InAllowed: 1, OutAllowed: 1, OutDropped: 1}); got != want {
		t.Fatalf("A: %+v, want %+v", got, want)
	}
	if got, want := st[netip.Addr{}], (PeerCounters{InAllowed: 1, InDropped: 2}); got != want {
		t.Fatalf("others: %+v, want %+v", got, want)
	}
	if len(st) != 2 {
		t.Fatalf("stats has %d addresses: %v", len(st), st)
	}
	// counters survive an Apply that keeps the address
	f.Apply(Config{Self: pfx(self), Rules: []Rule{{Direction: In, Proto: All, Peers: pfx(peerA)}}})
	if got := f.Stats()[netip.MustParseAddr(peerA)].InAllowed; got != 1 {
		t.Fatalf("after Apply: InAllowed = %d", got)
	}
}
