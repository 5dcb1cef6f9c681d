package firewall

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// benchConfig has n rules, each for one peer of a 100.64.0.0/16 mesh plus
// a few prefix rules; the benchmarked peer (peerA) is in three of them.
func benchConfig(n int) Config {
	cfg := Config{Self: pfx(self), Routed: pfx("192.168.0.0/24")}
	cfg.Rules = append(cfg.Rules,
		Rule{ID: "a/out", Direction: Out, Proto: TCP, Ports: []PortRange{{443, 443}}, Peers: pfx(peerA)},
		Rule{ID: "a/drop", Direction: Out, Action: Drop, Proto: TCP, Ports: []PortRange{{22, 22}}, Peers: pfx("100.64.0.0/16")},
		Rule{ID: "lan", Direction: In, Proto: All, Peers: pfx("10.0.0.0/8")},
	)
	for i := len(cfg.Rules); i < n; i++ {
		a := netip.AddrFrom4([4]byte{100, 64, byte(1 + i/250), byte(1 + i%250)})
		cfg.Rules = append(cfg.Rules, Rule{ID: fmt.Sprint("r", i), Direction: Direction(i % 2), Proto: TCP,
			Ports: []PortRange{{uint16(1000 + i%1000), uint16(1000 + i%1000)}}, Peers: []netip.Prefix{netip.PrefixFrom(a, 32)}})
	}
	return cfg
}

func BenchmarkEstablished(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			f, _ := newTest(b, benchConfig(n))
			syn := tcp(self, peerA, 40000, 443, tcpSYN)
			reply := tcp(peerA, self, 443, 40000, tcpACK)
			if !f.Outbound(syn) || !f.Inbound(reply) {
				b.Fatal("flow not established")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if !f.Inbound(reply) {
					b.Fatal("dropped")
				}
			}
		})
	}
}

// BenchmarkNewFlow opens a new flow per packet (source ports cycle; the
// clock jumps past the SYN timeout each cycle so old entries expire).
func BenchmarkNewFlow(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			f, clk := newTest(b, benchConfig(n))
			const cycle = 4000
			pkts := make([][]byte, cycle)
			for i := range pkts {
				pkts[i] = tcp(self, peerA, uint16(20000+i), 443, tcpSYN)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%cycle == 0 {
					clk.Advance(tcpSynTimeout + time.Second)
				}
				if !f.Outbound(pkts[i%cycle]) {
					b.Fatal("dropped")
				}
			}
		})
	}
}

// BenchmarkDenied is an unsolicited inbound packet (no entry, no rule).
func BenchmarkDenied(b *testing.B) {
	f, _ := newTest(b, benchConfig(10000))
	p := tcp(peerA, self, 1, 9999, tcpSYN)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if f.Inbound(p) {
			b.Fatal("passed")
		}
	}
}

func benchName(n int) string { return fmt.Sprintf("rules=%d", n) }
