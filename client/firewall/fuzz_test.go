package firewall

import (
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Inbound and Outbound (and to the
// quoted-packet decoder): they must never panic, and a packet that does not
// decode must be dropped.
func FuzzDecode(f *testing.F) {
	for _, p := range fuzzSeeds() {
		f.Add(p)
	}
	fl := New(nil, WithGCInterval(0), WithLimits(1024, 64))
	defer fl.Close()
	fl.Apply(Config{Self: pfx(self, self6), Routed: pfx("192.168.0.0/16", "::/0"), Rules: []Rule{
		{Direction: In, Proto: All, Peers: pfx("100.64.0.0/16", "fd00::/64")},
		{Direction: Out, Proto: TCP, Ports: []PortRange{{1, 1024}}, Peers: pfx(peerA, peer6)},
		{Direction: Out, Proto: ICMP, Peers: pfx(peerA, peer6)},
		{Direction: In, Action: Drop, Proto: UDP, Ports: []PortRange{{53, 53}}, Peers: pfx(peerB)},
	}})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p packet
		ok := decode(b, &p, false)
		in := fl.Inbound(b)
		out := fl.Outbound(b)
		if !ok && (in || out) {
			t.Fatalf("undecodable packet passed (in=%v out=%v)", in, out)
		}
		var q packet
		decode(b, &q, true)
	})
}

// fuzzSeeds are real-shaped packets; testdata/fuzz/FuzzDecode holds the
// same as the committed corpus.
func fuzzSeeds() [][]byte {
	quoted := udp(self, peerA, 5000, 53)
	return [][]byte{
		tcp(self, peerA, 40000, 443, tcpSYN),
		tcp(peerA, self, 443, 40000, tcpSYN|tcpACK),
		udp(peerB, self, 1000, 53),
		ping(self, peerA, 7, false),
		ping(peer6, self6, 7, true),
		tcp(peer6, self6, 1, 443, tcpSYN),
		ipPkt(peerA, self, ipICMP, icmpMsg(3, 3, 0, quoted)),
		ipPkt(peer6, self6, 0, append([]byte{ipTCP, 0, 0, 0, 0, 0, 0, 0}, tcpSeg(1, 443, tcpSYN)...)),
		ipPkt(peerA, "192.168.1.1", 47, make([]byte, 8)),
	}
}
