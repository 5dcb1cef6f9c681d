package mgmt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/internal/zstdbody"
	"petrel/proto/managementpb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scriptServer is a Management server on loopback that streams a fixed
// script of SyncResponses (sealed properly) to test the client's checks.
type scriptServer struct {
	managementpb.UnimplementedManagementServer
	key    keys.Private
	script []*managementpb.SyncResponse
	// endScript ends the stream right after the script (a distinct
	// status): a client that should have stopped earlier fails at once,
	// not at its test's deadline.
	endScript bool
	tamper    bool
	compress  bool     // zstd the scripted messages worth it
	zbodies   [][]byte // sent first, sealed as they are, marked COMPRESSION_ZSTD
	req       chan *managementpb.SyncRequest
}

func (s *scriptServer) ServerKey(context.Context, *managementpb.ServerKeyRequest) (*managementpb.ServerKeyResponse, error) {
	pub := s.key.Public()
	return &managementpb.ServerKeyResponse{Key: pub[:], Version: 1}, nil
}

func (s *scriptServer) Sync(in *managementpb.EncryptedMessage, stream grpc.ServerStreamingServer[managementpb.EncryptedMessage]) error {
	agent, _ := keys.PublicFromBytes(in.GetWgPublicKey())
	plain, err := seal.Open(in.GetBody(), agent, s.key)
	if err != nil {
		return err
	}
	if s.req != nil {
		req := &managementpb.SyncRequest{}
		_ = proto.Unmarshal(plain, req)
		s.req <- req
	}
	for _, z := range s.zbodies {
		sealed, _ := seal.Seal(z, agent, s.key)
		if err := stream.Send(&managementpb.EncryptedMessage{Body: sealed, Compression: managementpb.Compression_COMPRESSION_ZSTD}); err != nil {
			return err
		}
	}
	for _, r := range s.script {
		b, _ := proto.Marshal(r)
		comp := managementpb.Compression_COMPRESSION_NONE
		if z, ok := zstdbody.NewEncoder().Compress(b); ok && s.compress {
			b, comp = z, managementpb.Compression_COMPRESSION_ZSTD
		}
		sealed, _ := seal.Seal(b, agent, s.key)
		if s.tamper {
			sealed[len(sealed)-1] ^= 1
		}
		if err := stream.Send(&managementpb.EncryptedMessage{Body: sealed, Compression: comp}); err != nil {
			return err
		}
	}
	if s.endScript {
		return status.Error(codes.OutOfRange, "script ended: the client read past every scripted message")
	}
	<-stream.Context().Done()
	return nil
}

func serve(t *testing.T, srv *scriptServer) *Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	managementpb.RegisterManagementServer(gs, srv)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	c, err := Dial(context.Background(), "http://"+lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); gs.Stop(); <-done })
	return c
}

func newKey(t *testing.T) keys.Private {
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func full(serial uint64) *managementpb.SyncResponse {
	return &managementpb.SyncResponse{Serial: serial, Full: &managementpb.NetworkMap{}}
}

func delta(serial uint64) *managementpb.SyncResponse {
	return &managementpb.SyncResponse{Serial: serial, Delta: &managementpb.NetworkMapDelta{}}
}

func TestSyncSerialChecks(t *testing.T) {
	cases := []struct {
		name    string
		script  []*managementpb.SyncResponse
		tamper  bool
		wantN   int // messages delivered before the error
		wantErr error
	}{
		{"gap", []*managementpb.SyncResponse{full(5), delta(6), delta(8)}, false, 2, ErrSerialGap},
		{"repeat", []*managementpb.SyncResponse{full(5), delta(5)}, false, 1, ErrSerialGap},
		{"delta before full", []*managementpb.SyncResponse{delta(1)}, false, 0, ErrSerialGap},
		{"config update counts", []*managementpb.SyncResponse{full(1), {Serial: 2, ServerConfig: &managementpb.ServerConfig{}}, delta(4)}, false, 2, ErrSerialGap},
		{"new full resets", []*managementpb.SyncResponse{full(9), delta(10), full(3), delta(4), delta(6)}, false, 4, ErrSerialGap},
		{"tampered", []*managementpb.SyncResponse{full(1)}, true, 0, ErrBadResponse},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := &scriptServer{key: newKey(t), script: tc.script, tamper: tc.tamper, endScript: true}
			c := serve(t, srv)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			n := 0
			err := c.Sync(ctx, newKey(t), nil, func(*managementpb.SyncResponse) error { n++; return nil })
			if !errors.Is(err, tc.wantErr) || n != tc.wantN {
				t.Fatalf("err %v after %d messages, want %v after %d (a missing check reads on to the end of the script)", err, n, tc.wantErr, tc.wantN)
			}
		})
	}
}

func TestSyncCallbackErrorStops(t *testing.T) {
	srv := &scriptServer{key: newKey(t), script: []*managementpb.SyncResponse{full(1), delta(2)}}
	c := serve(t, srv)
	stop := errors.New("stop")
	err := c.Sync(context.Background(), newKey(t), nil, func(*managementpb.SyncResponse) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("err %v", err)
	}
}

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]string{
		"http://mgmt.lab.test:8080": "mgmt.lab.test:8080",
		"http://mgmt.lab.test":      "mgmt.lab.test:80",
		"https://mgmt.example.net":  "mgmt.example.net:443",
		"127.0.0.1:9000":            "127.0.0.1:9000",
		"http://[::1]:8080/":        "[::1]:8080",
	} {
		got, _, err := parseTarget(in)
		if err != nil || got != want {
			t.Errorf("parseTarget(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x:1", "no-port", "http://:80"} {
		if _, _, err := parseTarget(bad); err == nil {
			t.Errorf("parseTarget(%q) accepted", bad)
		}
	}
}

// Compressed messages come through whole, the client declares what it
// implements (keeping the caller's meta), and the receive limit is raised
// past gRPC's default 4 MiB: a 6 MiB map (incompressible: random bytes)
// arrives.
func TestSyncCompressedAndLarge(t *testing.T) {
	big := make([]byte, 6<<20)
	for i := range big {
		big[i] = byte(i*7919 ^ i>>5*104729)
	}
	huge := &managementpb.SyncResponse{Serial: 3, Delta: &managementpb.NetworkMapDelta{
		UpsertPeers: []*managementpb.RemotePeer{{PublicKey: "k", Name: fmt.Sprintf("%x", big[:3<<20])}}}}
	script := []*managementpb.SyncResponse{full(1), delta(2), huge}
	for _, compress := range []bool{true, false} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			srv := &scriptServer{key: newKey(t), script: script, compress: compress, req: make(chan *managementpb.SyncRequest, 1)}
			c := serve(t, srv)
			var got []*managementpb.SyncResponse
			stop := errors.New("done")
			err := c.Sync(context.Background(), newKey(t), &managementpb.SyncRequest{Meta: &managementpb.PeerMeta{Hostname: "h"}},
				func(r *managementpb.SyncResponse) error {
					got = append(got, r)
					if len(got) == len(script) {
						return stop
					}
					return nil
				})
			if !errors.Is(err, stop) {
				t.Fatalf("sync: %v after %d messages", err, len(got))
			}
			for i := range script {
				if !proto.Equal(got[i], script[i]) {
					t.Fatalf("message %d differs", i)
				}
			}
			req := <-srv.req
			if req.GetMeta().GetHostname() != "h" || !slices.Equal(req.Capabilities, capabilities) {
				t.Fatalf("request: %v", req)
			}
		})
	}
}

// bombFrame hand-builds a zstd frame declaring fcs bytes whose RLE blocks
// decode to total zero bytes: a bomb of any size in a few kilobytes.
func bombFrame(fcs uint64, total int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xc0, 10 << 3} // 8-byte content size, 1 MiB window
	b = binary.LittleEndian.AppendUint64(b, fcs)
	for total > 0 {
		n := min(total, 128<<10)
		total -= n
		hdr := uint32(n)<<3 | 1<<1 // RLE block
		if total == 0 {
			hdr |= 1
		}
		b = append(b, byte(hdr), byte(hdr>>8), byte(hdr>>16), 0)
	}
	return b
}

// A compressed body that would decode to more than zstdbody.MaxDecoded
// (64 MiB) ends Sync with a clear error, before or while decoding, without
// allocating what it would decode to.
func TestSyncRefusesZipBomb(t *testing.T) {
	for name, bomb := range map[string][]byte{
		"declares 1 GiB":                 bombFrame(1<<30, 1<<30),
		"declares 1 KiB, holds 1 GiB":    bombFrame(1<<10, 1<<30),
		"declares 64 MiB+1, holds 1 GiB": bombFrame(zstdbody.MaxDecoded+1, 1<<30),
	} {
		t.Run(name, func(t *testing.T) {
			srv := &scriptServer{key: newKey(t), zbodies: [][]byte{bomb}, script: []*managementpb.SyncResponse{full(1)}}
			c := serve(t, srv)
			n := 0
			var err error
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			err = c.Sync(context.Background(), newKey(t), nil, func(*managementpb.SyncResponse) error { n++; return nil })
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrBadResponse) || !errors.Is(err, zstdbody.ErrTooLarge) || n != 0 {
				t.Fatalf("err %v after %d messages, want ErrTooLarge before any", err, n)
			}
			if !strings.Contains(err.Error(), "decodes to more than the limit") {
				t.Fatalf("unclear error: %v", err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Fatalf("Sync allocated %d MiB refusing a bomb", alloc>>20)
			}
		})
	}
}
