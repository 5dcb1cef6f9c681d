package mgmt

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/proto/managementpb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scriptServer is a Management server on loopback that streams a fixed
// script of SyncResponses (sealed properly) to test the client's checks.
type scriptServer struct {
	managementpb.UnimplementedManagementServer
	key    keys.Private
	script []*managementpb.SyncResponse
	tamper bool
}

func (s *scriptServer) ServerKey(context.Context, *managementpb.ServerKeyRequest) (*managementpb.ServerKeyResponse, error) {
	pub := s.key.Public()
	return &managementpb.ServerKeyResponse{Key: pub[:], Version: 1}, nil
}

func (s *scriptServer) Sync(in *managementpb.EncryptedMessage, stream grpc.ServerStreamingServer[managementpb.EncryptedMessage]) error {
	agent, _ := keys.PublicFromBytes(in.GetWgPublicKey())
	if _, err := seal.Open(in.GetBody(), agent, s.key); err != nil {
		return err
	}
	for _, r := range s.script {
		b, _ := proto.Marshal(r)
		sealed, _ := seal.Seal(b, agent, s.key)
		if s.tamper {
			sealed[len(sealed)-1] ^= 1
		}
		if err := stream.Send(&managementpb.EncryptedMessage{Body: sealed}); err != nil {
			return err
		}
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
			srv := &scriptServer{key: newKey(t), script: tc.script, tamper: tc.tamper}
			c := serve(t, srv)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			n := 0
			err := c.Sync(ctx, newKey(t), nil, func(*managementpb.SyncResponse) error { n++; return nil })
			if !errors.Is(err, tc.wantErr) || n != tc.wantN {
				t.Fatalf("err %v after %d messages, want %v after %d", err, n, tc.wantErr, tc.wantN)
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
