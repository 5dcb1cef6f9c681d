package client

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"petrel/proto/signalpb"
)

// BenchmarkSealOpen measures one end-to-end sealed message on the client
// side: marshal + seal with the cached precomputed key, then open + parse.
func BenchmarkSealOpen(b *testing.B) {
	a, c := New(Config{Key: testKey(1)}), New(Config{Key: testKey(2)})
	msg := &signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Candidate{Candidate: &signalpb.Candidate{
		SessionId: 1, Candidate: "candidate:1 1 udp 2130706431 192.0.2.1 51820 typ host",
	}}}
	b.ReportAllocs()
	for b.Loop() {
		pt, _ := proto.Marshal(msg)
		body, err := a.cache.get(c.PublicKey()).Seal(pt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Open(a.PublicKey(), body); err != nil {
			b.Fatal(err)
		}
	}
}
