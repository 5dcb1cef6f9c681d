package signal

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"petrel/proto/signalpb"
)

// BenchmarkRouteEnvelope measures the server's own work per envelope
// (lookup, stamp, queue, batch, marshal the outgoing frame), without gRPC
// and sockets.
func BenchmarkRouteEnvelope(b *testing.B) {
	s := NewServer(Config{Key: fuzzKey(1), Rate: -1})
	from, to := fuzzSession(s, fuzzKey(2)), fuzzSession(s, fuzzKey(3))
	body := make([]byte, 200)
	b.ReportAllocs()
	for b.Loop() {
		e := &signalpb.Envelope{To: to.keyBytes, Id: 1, Body: body}
		if err := s.route(from, e); err != nil {
			b.Fatal(err)
		}
		for _, f := range drainFrames(s, to) {
			if _, err := proto.Marshal(f); err != nil {
				b.Fatal(err)
			}
		}
	}
}
