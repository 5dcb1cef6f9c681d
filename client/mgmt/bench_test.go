package mgmt

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/internal/zstdbody"
	"petrel/proto/managementpb"
)

// BenchmarkOpenFullMap is the agent's cost of a full map of n peers as a
// current server sends it (compact peers, no peer records, zstd, sealed):
// open, decompress, decode, restore names and records.
func BenchmarkOpenFullMap(b *testing.B) {
	var server, agent keys.Private
	server[0], agent[0] = 1, 2
	box := seal.Precompute(server.Public(), agent)
	for _, n := range []int{5000, 50000} {
		r := rand.New(rand.NewPCG(1, uint64(n)))
		m := &managementpb.NetworkMap{Dns: derivedDNS("petrel.internal")}
		for i := range n {
			key := make([]byte, 32)
			for j := range key {
				key[j] = byte(r.Uint32())
			}
			m.Peers = append(m.Peers, rp(base64.StdEncoding.EncodeToString(key),
				fmt.Sprintf("host-%05d.petrel.internal", i), fmt.Sprintf("100.64.%d.%d/32", (i+1)>>8, (i+1)&255)))
		}
		plain, _ := proto.Marshal(&managementpb.SyncResponse{Serial: 1, Full: m})
		z, _ := zstdbody.NewEncoder().Compress(plain)
		sealed, err := seal.Seal(z, agent.Public(), server)
		if err != nil {
			b.Fatal(err)
		}
		msg := &managementpb.EncryptedMessage{Body: sealed, Compression: managementpb.Compression_COMPRESSION_ZSTD}
		dec, err := zstdbody.NewDecoder(0)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				resp, err := openSyncResponse(box, dec, msg)
				if err != nil {
					b.Fatal(err)
				}
				restoreNames(resp.Full.Peers)
				var zone peerZone
				zone.full(resp.Full)
			}
			b.ReportMetric(float64(len(sealed)), "wire-B")
		})
		dec.Close()
	}
}
