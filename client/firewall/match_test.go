package firewall

import (
	"net/netip"
	"testing"
)

// matchConfig exercises compilation: port ranges, a bidirectional pair,
// overlapping accept/drop, prefixes and routed networks, ICMP, All, IPv6.
func matchConfig() Config {
	return Config{
		Self:   pfx(self+"/16", self6), // the prefix length of Self is ignored
		Routed: pfx("192.168.10.0/24"),
		Rules: []Rule{
			{ID: "web/in", PolicyID: "p-web", Direction: In, Proto: TCP,
				Ports: []PortRange{{80, 80}, {8000, 8080}, {443, 0}}, Peers: pfx(peerA)},
			// bidirectional pair A <-> B, UDP 53
			{ID: "dns/in", PolicyID: "p-dns", Direction: In, Proto: UDP, Ports: []PortRange{{53, 53}}, Peers: pfx(peerB)},
			{ID: "dns/out", PolicyID: "p-dns", Direction: Out, Proto: UDP, Ports: []PortRange{{53, 53}}, Peers: pfx(peerB)},
			// accept everything from the overlay, but drop A's TCP 22 (listed later: drop still wins)
			{ID: "all/in", PolicyID: "p-all", Direction: In, Proto: All, Peers: pfx("100.64.0.0/16")},
			{ID: "ssh/drop", PolicyID: "p-nossh", Direction: In, Action: Drop, Proto: TCP,
				Ports: []PortRange{{22, 22}}, Peers: pfx(peerA)},
			{ID: "icmp/out", PolicyID: "p-icmp", Direction: Out, Proto: ICMP, Peers: pfx(peerA, peer6)},
			// routed: 10.9.0.0/16 (behind another router) may reach our LAN on TCP 5432
			{ID: "lan/in", PolicyID: "p-lan", Direction: In, Proto: TCP, Ports: []PortRange{{5432, 5432}},
				Peers: pfx("10.9.0.0/16")},
			// All with ports: TCP/UDP only
			{ID: "allports/out", PolicyID: "p-ap", Direction: Out, Proto: All,
				Ports: []PortRange{{9000, 9000}}, Peers: pfx(peerB)},
			{ID: "v6/in", PolicyID: "p-v6", Direction: In, Proto: TCP, Ports: []PortRange{{443, 443}}, Peers: pfx(peer6)},
			{ID: "self/in", PolicyID: "p-self", Direction: In, Proto: All, Peers: pfx(self)}, // self ignored
			{ID: "bad/in", Direction: In, Proto: Proto(9), Peers: pfx(peerB)},                // unknown protocol: matches nothing
		},
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name     string
		dir      Direction
		src, dst string
		proto    Proto
		port     uint16
		want     bool
		wantRule string
	}{
		{"port 80", In, peerA, self, TCP, 80, true, "web/in"},
		{"range start", In, peerA, self, TCP, 8000, true, "web/in"},
		{"range end", In, peerA, self, TCP, 8080, true, "web/in"},
		{"single port via End<Start", In, peerA, self, TCP, 443, true, "web/in"},
		{"outside ranges falls to all/in", In, peerA, self, TCP, 8081, true, "all/in"},
		{"drop wins over earlier accept", In, peerA, self, TCP, 22, false, "ssh/drop"},
		{"drop is per port", In, peerA, self, UDP, 22, true, "all/in"},
		{"bidirectional in", In, peerB, self, UDP, 53, true, "dns/in"},
		{"bidirectional out", Out, self, peerB, UDP, 53, true, "dns/out"},
		{"out wrong port", Out, self, peerB, UDP, 54, false, ""},
		{"out wrong proto", Out, self, peerB, TCP, 53, false, ""},
		{"out no rule", Out, self, "100.64.0.9", TCP, 80, false, ""},
		{"icmp out", Out, self, peerA, ICMP, 0, true, "icmp/out"},
		{"icmp out not to B", Out, self, peerB, ICMP, 0, false, ""},
		{"all with ports: tcp", Out, self, peerB, TCP, 9000, true, "allports/out"},
		{"all with ports: not icmp", Out, self, peerB, ICMP, 0, false, ""},
		{"prefix rule, other proto", In, "100.64.7.7", self, All, 0, true, "all/in"},
		{"prefix rule excludes outside", In, "100.65.0.1", self, TCP, 80, false, ""},
		{"routed dst allowed", In, "10.9.1.1", "192.168.10.5", TCP, 5432, true, "lan/in"},
		{"routed wrong port", In, "10.9.1.1", "192.168.10.5", TCP, 5433, false, ""},
		{"not routed dst", In, "10.9.1.1", "192.168.11.5", TCP, 5432, false, ""},
		{"overlay source to routed net", In, peerA, "192.168.10.5", UDP, 1, true, "all/in"},
		{"ipv6 allowed", In, peer6, self6, TCP, 443, true, "v6/in"},
		{"ipv6 wrong port", In, peer6, self6, TCP, 80, false, ""},
		{"ipv6 icmp out", Out, self6, peer6, ICMP, 0, true, "icmp/out"},
		{"ipv6 not in v4 prefix", In, "::ffff:100.64.0.2", self6, TCP, 80, false, ""},
	}
	if _, ok := compile(matchConfig(), 1, nil, &counters{}).byAddr[netip.MustParseAddr(self)]; ok {
		t.Fatal("self listed in the compiled table")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newTest(t, matchConfig())
			d := f.Trace(netip.MustParseAddr(tc.src), netip.MustParseAddr(tc.dst), tc.proto, tc.port)
			if d.Allowed != tc.want || d.RuleID != tc.wantRule && tc.wantRule != "" {
				t.Fatalf("Trace = %+v, want allowed=%v rule %q", d, tc.want, tc.wantRule)
			}
			if !tc.want && d.Reason == "" {
				t.Fatalf("denied without a reason: %+v", d)
			}
			// the same through the packet path
			var pkt []byte
			switch tc.proto {
			case TCP:
				pkt = tcp(tc.src, tc.dst, 40000, tc.port, tcpSYN)
			case UDP:
				pkt = udp(tc.src, tc.dst, 40000, tc.port)
			case ICMP:
				pkt = ping(tc.src, tc.dst, 7, false)
			case All:
				pkt = ipPkt(tc.src, tc.dst, 47, make([]byte, 8)) // GRE
			}
			got := f.Outbound(pkt)
			if tc.dir == In {
				got = f.Inbound(pkt)
			}
			if got != tc.want {
				t.Fatalf("packet verdict %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDefaultDeny(t *testing.T) {
	f := New(nil, WithGCInterval(0))
	defer f.Close()
	mustDrop(t, f.Outbound(tcp(self, peerA, 1000, 80, tcpSYN)), "outbound before Apply")
	mustDrop(t, f.Inbound(tcp(peerA, self, 1000, 80, tcpSYN)), "inbound before Apply")

	f.Apply(Config{Self: pfx(self)}) // empty policy
	mustDrop(t, f.Outbound(tcp(self, peerA, 1000, 80, tcpSYN)), "outbound, empty policy")
	mustDrop(t, f.Inbound(udp(peerA, self, 1000, 80)), "inbound, empty policy")
	if d := f.Trace(netip.MustParseAddr(peerA), netip.MustParseAddr(self), TCP, 80); d.Allowed || d.Reason != reasonNoRule {
		t.Fatalf("Trace = %+v", d)
	}
}

func TestFragments(t *testing.T) {
	frag := func(off uint16, mf bool) []byte {
		p := udp(peerA, self, 1000, 53)
		v := off / 8
		if mf {
			v |= 0x2000
		}
		p[6], p[7] = byte(v>>8), byte(v)
		return p
	}
	udpOnly := Config{Rules: []Rule{{Direction: In, Proto: UDP, Peers: pfx(peerA)}}}
	f, _ := newTest(t, udpOnly)
	mustPass(t, f.Inbound(frag(0, true)), "first fragment, udp rule")
	mustDrop(t, f.Inbound(frag(1480, false)), "non-first fragment, udp rule")

	all := Config{Rules: []Rule{{Direction: In, Proto: All, Peers: pfx(peerA)}}}
	f, _ = newTest(t, all)
	mustPass(t, f.Inbound(frag(1480, false)), "non-first fragment, all rule")

	allPorts := Config{Rules: []Rule{{Direction: In, Proto: All, Ports: []PortRange{{53, 53}}, Peers: pfx(peerA)}}}
	f, _ = newTest(t, allPorts)
	mustDrop(t, f.Inbound(frag(1480, false)), "non-first fragment, all rule with ports")
}

func TestIPv6ExtensionHeaders(t *testing.T) {
	hopByHop := ipPkt(peer6, self6, 0, append([]byte{ipTCP, 0, 0, 0, 0, 0, 0, 0}, tcpSeg(1, 443, tcpSYN)...))
	f, _ := newTest(t, Config{Rules: []Rule{{Direction: In, Proto: TCP, Peers: pfx(peer6)}}})
	mustDrop(t, f.Inbound(hopByHop), "ext header with a TCP rule")
	f, _ = newTest(t, Config{Rules: []Rule{{Direction: In, Proto: All, Peers: pfx(peer6)}}})
	mustPass(t, f.Inbound(hopByHop), "ext header with an All rule")
}

func TestMalformed(t *testing.T) {
	f, _ := newTest(t, Config{Rules: []Rule{{Direction: In, Proto: All, Peers: pfx(peerA, peer6)}}})
	good := tcp(peerA, self, 1, 80, tcpSYN)
	mustPass(t, f.Inbound(good), "control")
	badIHL := append([]byte(nil), good...)
	badIHL[0] = 0x44
	longIHL := append([]byte(nil), good...)
	longIHL[0] = 0x4f
	badLen := append([]byte(nil), good...)
	badLen[2], badLen[3] = 0xff, 0xff
	shortLen := append([]byte(nil), good...)
	shortLen[2], shortLen[3] = 0, 10
	cases := map[string][]byte{
		"empty":          {},
		"version 5":      append([]byte{0x55}, good[1:]...),
		"short v4":       good[:19],
		"ihl < 5":        badIHL,
		"ihl past end":   longIHL[:40],
		"total > len":    badLen,
		"total < ihl":    shortLen,
		"truncated tcp":  ipPkt(peerA, self, ipTCP, make([]byte, 19)),
		"truncated udp":  ipPkt(peerA, self, ipUDP, make([]byte, 7)),
		"truncated icmp": ipPkt(peerA, self, ipICMP, make([]byte, 7)),
		"short v6":       tcp(peer6, self6, 1, 80, tcpSYN)[:39],
		"v6 payload len": ipPkt(peer6, self6, ipUDP, udpDgram(1, 2))[:45],
	}
	for name, p := range cases {
		mustDrop(t, f.Inbound(p), name)
		mustDrop(t, f.Outbound(p), name)
	}
	if got := f.malformed.Load(); got != uint64(2*len(cases)) {
		t.Fatalf("malformed = %d, want %d", got, 2*len(cases))
	}
}
