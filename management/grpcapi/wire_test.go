package grpcapi

import (
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/internal/zstdbody"
	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/proto/managementpb"
)

// wireAccount is an account of n peers with real-looking fields (random
// 32-byte WireGuard keys in base64, 12-byte random IDs in base32 as the
// service makes them, host names as labels), all in one mesh, ng groups
// with a TCP policy each and 5 routes, one an exit node served by two
// peers: with ng = n/20, the netmap benchmark fixture with keys and IDs
// that do not compress better than real ones.
func wireAccount(n, ng int) *model.Account {
	r := rand.New(rand.NewPCG(uint64(n), 12))
	rnd := func(k int) []byte {
		b := make([]byte, k)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	ids := base32.StdEncoding.WithPadding(base32.NoPadding)
	a := model.NewAccount("acct", netip.MustParsePrefix("100.64.0.0/16"), time.Unix(0, 0))
	a.Groups["all"] = &model.Group{ID: "all", Name: model.AllGroupName}
	var peerIDs []string
	for i := range n {
		id := strings.ToLower(ids.EncodeToString(rnd(12)))
		host := fmt.Sprintf("%s-%04d", []string{"laptop", "build", "db", "web", "edge"}[i%5], i)
		a.Peers[id] = &model.Peer{ID: id, Name: host, DNSLabel: host,
			PublicKey: base64.StdEncoding.EncodeToString(rnd(32)),
			IP:        netip.AddrFrom4([4]byte{100, 64, byte((i + 1) >> 8), byte(i + 1)})}
		g := fmt.Sprintf("g%04d", i%ng)
		if a.Groups[g] == nil {
			a.Groups[g] = &model.Group{ID: g, Name: g}
		}
		a.Groups[g].PeerIDs = append(a.Groups[g].PeerIDs, id)
		peerIDs = append(peerIDs, id)
	}
	a.Policies["allow-all"] = &model.Policy{ID: "allow-all", Name: "allow-all", Enabled: true, Rules: []model.PolicyRule{{
		ID: "allow-all-r0", Sources: []string{"all"}, Destinations: []string{"all"}, Action: model.ActionAccept, Protocol: model.ProtoAll}}}
	for i := range ng {
		g := fmt.Sprintf("g%04d", i)
		a.Policies["tcp-"+g] = &model.Policy{ID: "tcp-" + g, Name: "tcp-" + g, Enabled: true, Rules: []model.PolicyRule{{
			ID: "tcp-" + g + "-r0", Sources: []string{g}, Destinations: []string{g}, Action: model.ActionAccept, Protocol: model.ProtoTCP,
			Ports: []model.PortRange{{Start: 22, End: 22}, {Start: 8000, End: 8080}}}}}
	}
	for i := range 4 {
		id := fmt.Sprintf("route%d", i)
		a.Routes[id] = &model.Route{ID: id, NetworkID: fmt.Sprintf("net%d", i%2),
			Network: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i % 2), 0, 0}), 16),
			Peer:    peerIDs[i%n], Groups: []string{"all"}, Metric: 100 + i, Enabled: true}
	}
	a.Groups["exits"] = &model.Group{ID: "exits", Name: "exits", PeerIDs: peerIDs[4:min(6, n)]}
	a.Routes["exit"] = &model.Route{ID: "exit", NetworkID: "exit", Network: netip.MustParsePrefix("0.0.0.0/0"),
		PeerGroups: []string{"exits"}, Groups: []string{"all"}, Metric: 10, Enabled: true, Masquerade: true}
	return a
}

// wireFixture is the first Sync message of a peer of wireAccount(n) (the
// last one by address, not a routing peer), with a server config like a
// real server's.
func wireFixture(tb testing.TB, n int) *managementpb.SyncResponse {
	tb.Helper()
	a := wireAccount(n, max(n/20, 1))
	s := netmap.Build(a)
	var id string
	for pid, p := range a.Peers {
		if p.IP == netip.AddrFrom4([4]byte{100, 64, byte(n >> 8), byte(n)}) {
			id = pid
		}
	}
	m, err := s.Map(id)
	if err != nil {
		tb.Fatal(err)
	}
	if len(m.Peers) != n-1 {
		tb.Fatalf("fixture peer sees %d peers, want %d", len(m.Peers), n-1)
	}
	return &managementpb.SyncResponse{Serial: 7, Full: m, ServerConfig: &managementpb.ServerConfig{
		StunUrls: []string{"stun:stun.example.net:3478"}, SignalUrl: "https://mgmt.example.net",
		Relay: &managementpb.RelayConfig{Urls: []string{"rel://relay.example.net:443"},
			Token: strings.Repeat("t", 120), TokenExpiresUnix: 1e9},
		Domains: &managementpb.ServerDomains{Management: []string{"mgmt.example.net"}, Signal: []string{"mgmt.example.net"},
			RelayPoolRoots: []string{"relay.example.net"}, Stun: []string{"stun.example.net"}}}}
}

// wireSize is the size of r's envelope as the server encodes it for an
// agent declaring caps (whether or not that agent could receive it).
func wireSize(tb testing.TB, r *managementpb.SyncResponse, z *zstdbody.Encoder, caps ...managementpb.Capability) int {
	tb.Helper()
	srv, agent := wireKeys(tb)
	enc := newSyncEncoder(seal.Precompute(agent.Public(), srv), &managementpb.SyncRequest{Capabilities: caps}, z)
	enc.maxBody = math.MaxInt
	m, err := enc.encode(r)
	if err != nil {
		tb.Fatal(err)
	}
	pub := srv.Public()
	m.WgPublicKey = pub[:]
	return proto.Size(m)
}

func wireKeys(tb testing.TB) (srv, agent keys.Private) {
	var err error
	if srv, err = keys.NewPrivate(); err == nil {
		agent, err = keys.NewPrivate()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return srv, agent
}

var (
	capZstd    = managementpb.Capability_CAPABILITY_ZSTD
	capDerive  = managementpb.Capability_CAPABILITY_DERIVED_PEER_RECORDS
	capCompact = managementpb.Capability_CAPABILITY_COMPACT_PEERS
	allCaps    = []managementpb.Capability{capZstd, capDerive, capCompact}
)

// TestWireSizes prints the size on the wire of a full map (the envelope of
// the first Sync message) before issue 12 (uncompressed, with the peers'
// DNS records: what older agents still get), with each capability alone,
// and after (all of them), and checks the target: a 5,000-peer map
// in at most 200 KB. `go test ./management/grpcapi -run TestWireSizes -v`
// prints the table of BENCHMARKS.md; -short and -race skip 50,000 peers
// (sizes do not depend on the race detector; TestFiftyThousandPeersSync
// covers that size under it).
func TestWireSizes(t *testing.T) {
	z := zstdbody.NewEncoder()
	sizes := []int{1000, 5000, 10000, 50000}
	if testing.Short() || raceEnabled {
		sizes = sizes[:3]
	}
	t.Logf("%6s %10s %10s %10s %10s %10s %7s %9s", "peers", "before", "-records", "-compact", "zstd only", "after", "B/peer", "encode")
	for _, n := range sizes {
		r := wireFixture(t, n)
		before := wireSize(t, r, z)
		derived := wireSize(t, r, z, capDerive)
		compact := wireSize(t, r, z, capCompact)
		zonly := wireSize(t, r, z, capZstd)
		start := time.Now()
		after := wireSize(t, r, z, allCaps...)
		took := time.Since(start)
		t.Logf("%6d %10d %10d %10d %10d %10d %7.1f %9s", n, before, derived, compact, zonly, after,
			float64(after)/float64(n), took.Round(10*time.Microsecond))
		if !(after < zonly && zonly < before && derived < before && compact < before) {
			t.Errorf("%d peers: sizes do not shrink: %d before, %d, %d, %d alone, %d after", n, before, derived, compact, zonly, after)
		}
		if n == 5000 && after > 200_000 {
			t.Errorf("a 5,000-peer map takes %d bytes on the wire, over the 200 KB target", after)
		}
	}
}

// BenchmarkWireSize is the server's cost per full sync: encoding the
// first Sync message of a peer of an n-peer account for an older agent
// (legacy: marshal, seal) and for a current one (current: strip records,
// compact peers, marshal, compress, seal), and the compression alone
// (zstd). wire-B is the envelope's size; older agents get nothing but
// ResourceExhausted past 4 MiB.
func BenchmarkWireSize(b *testing.B) {
	z := zstdbody.NewEncoder()
	for _, n := range []int{1000, 5000, 10000, 50000} {
		r := wireFixture(b, n)
		srv, agent := wireKeys(b)
		box := seal.Precompute(agent.Public(), srv)
		pub := srv.Public()
		for _, v := range []struct {
			name string
			caps []managementpb.Capability
		}{{"legacy", nil}, {"current", allCaps}} {
			enc := newSyncEncoder(box, &managementpb.SyncRequest{Capabilities: v.caps}, z)
			enc.maxBody = math.MaxInt
			b.Run(fmt.Sprintf("%s/%d", v.name, n), func(b *testing.B) {
				var m *managementpb.EncryptedMessage
				cpu := processCPU()
				for b.Loop() {
					var err error
					if m, err = enc.encode(r); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu)
				m.WgPublicKey = pub[:]
				b.ReportMetric(float64(proto.Size(m)), "wire-B")
			})
		}
		plain, err := proto.Marshal(netmap.CompactPeers(netmap.WithoutPeerRecords(r)))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("zstd/%d", n), func(b *testing.B) {
			var c []byte
			cpu := processCPU()
			for b.Loop() {
				c, _ = z.Compress(plain)
			}
			reportCPU(b, cpu)
			b.ReportMetric(float64(len(plain)), "in-B")
			b.ReportMetric(float64(len(c)), "out-B")
		})
	}
}

// reportCPU reports the process CPU time per op since start ("cpu-ns/op"):
// steadier than wall time on a shared machine (it includes GC workers).
func reportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
	}
}
