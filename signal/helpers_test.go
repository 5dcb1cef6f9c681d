package signal_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/proto/signalpb"
	"petrel/signal"
	"petrel/signal/client"
)

const waitFor = 30 * time.Second

// testServer is a signal server on a real loopback gRPC listener.
type testServer struct {
	t    *testing.T
	sig  *signal.Server
	gs   *grpc.Server
	addr string
	key  keys.Private

	mu   sync.Mutex
	seen []*signalpb.ClientFrame // every frame the server received
}

func newKey(t testing.TB) keys.Private {
	t.Helper()
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func startServer(t *testing.T, cfg signal.Config, addr string) *testServer {
	t.Helper()
	if cfg.Key.IsZero() {
		cfg.Key = newKey(t)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	deadline := time.Now().Add(waitFor)
	for {
		ln, err = net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ts := &testServer{t: t, key: cfg.Key, addr: ln.Addr().String()}
	ts.sig = signal.NewServer(cfg)
	ts.gs = grpc.NewServer(append(signal.ServerOptions(), grpc.StreamInterceptor(ts.record))...)
	ts.sig.Register(ts.gs)
	go func() { _ = ts.gs.Serve(ln) }()
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) stop() {
	ts.sig.Stop()
	ts.gs.Stop()
}

// record captures what the server receives, to check what it can see.
func (ts *testServer) record(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, &recordingStream{ServerStream: ss, ts: ts})
}

type recordingStream struct {
	grpc.ServerStream
	ts *testServer
}

func (r *recordingStream) RecvMsg(m any) error {
	err := r.ServerStream.RecvMsg(m)
	if f, ok := m.(*signalpb.ClientFrame); ok && err == nil {
		r.ts.mu.Lock()
		r.ts.seen = append(r.ts.seen, proto.Clone(f).(*signalpb.ClientFrame))
		r.ts.mu.Unlock()
	}
	return err
}

func (ts *testServer) frames() []*signalpb.ClientFrame {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]*signalpb.ClientFrame(nil), ts.seen...)
}

// testClient wraps a client with channels for what it receives.
type testClient struct {
	*client.Client
	key  keys.Private
	msgs chan received
	errs chan *client.DeliveryError
	// states records OnStateChange calls.
	states chan bool
}

type received struct {
	from keys.Public
	msg  *signalpb.PeerMessage
}

func startClient(t *testing.T, addr string, key keys.Private, mod func(*client.Config)) *testClient {
	t.Helper()
	cfg := client.Config{Target: addr, Key: key, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	tc := &testClient{Client: client.New(cfg), key: key, msgs: make(chan received, 1024), errs: make(chan *client.DeliveryError, 1024), states: make(chan bool, 1024)}
	// The callbacks never block (a test that stops reading must not wedge
	// the client's receive goroutine); what does not fit is dropped.
	tc.OnStateChange(func(up bool) {
		select {
		case tc.states <- up:
		default:
		}
	})
	tc.SetHandler(func(from keys.Public, m *signalpb.PeerMessage) {
		select {
		case tc.msgs <- received{from, m}:
		default:
		}
	})
	tc.OnError(func(e *client.DeliveryError) {
		select {
		case tc.errs <- e:
		default:
		}
	})
	if err := tc.Start(context.Background()); err != nil {
		t.Fatalf("start client: %v", err)
	}
	t.Cleanup(tc.Stop)
	return tc
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func offer(ufrag string) *signalpb.PeerMessage {
	return &signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Offer{Offer: &signalpb.Offer{
		SessionId: 7, IceUfrag: ufrag, IcePwd: "pwd-" + ufrag, RelayInstanceUrl: "rel://eu-1.relay.test:8080",
		WgListenPort: 51820, Candidates: []string{"candidate:1 1 udp 2130706431 127.0.0.1 4000 typ host"},
	}}}
}

func waitConnected(t *testing.T, cs ...*testClient) {
	t.Helper()
	eventually(t, "clients connected", func() bool {
		for _, c := range cs {
			if !c.Connected() {
				return false
			}
		}
		return true
	})
}

func recv(t *testing.T, c *testClient) received {
	t.Helper()
	select {
	case r := <-c.msgs:
		return r
	case <-time.After(waitFor):
		t.Fatal("no message arrived")
		return received{}
	}
}

// rawStream opens a bare gRPC stream to the server (for impostor tests).
func rawStream(t *testing.T, addr string) (signalpb.Signal_ConnectClient, func()) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := signalpb.NewSignalClient(cc).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st, func() { cancel(); _ = cc.Close() }
}
