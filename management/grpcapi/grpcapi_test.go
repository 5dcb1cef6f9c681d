package grpcapi

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"petrel/client/mgmt"
	"petrel/internal/seal"
	"petrel/management"
	"petrel/management/internal/mgmttest"
	"petrel/proto/managementpb"
)

func TestLoginOverGRPC(t *testing.T) {
	e := startEnv(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	sk, err := e.client.ServerKey(ctx)
	if err != nil || sk != e.svc.ServerKey().Public() {
		t.Fatalf("server key %v: %v", sk, err)
	}
	plain := e.setupKey(t, management.SetupKeyInput{})
	k := mgmttest.NewKey(t)
	resp, err := e.client.Login(ctx, k, &managementpb.LoginRequest{SetupKey: plain, Hostname: "alpha"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetPeerConfig().GetFqdn() != "alpha.petrel.internal" || resp.GetServerConfig().GetRelay().GetToken() == "" {
		t.Fatalf("login response %v", resp)
	}
	// Re-login without a key; a second peer with the used one-off key fails.
	if _, err := e.client.Login(ctx, k, &managementpb.LoginRequest{Hostname: "alpha"}); err != nil {
		t.Fatalf("re-login: %v", err)
	}
	_, err = e.client.Login(ctx, mgmttest.NewKey(t), &managementpb.LoginRequest{SetupKey: plain})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "usage limit reached") || !mgmt.NeedsLogin(err) {
		t.Fatalf("exhausted key: %v", err)
	}
	_, err = e.client.Login(ctx, mgmttest.NewKey(t), &managementpb.LoginRequest{SetupKey: "psk_wrong"})
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "setup key not found") {
		t.Fatalf("unknown key: %v", err)
	}
	// Sync of an unregistered key is refused.
	err = e.client.Sync(ctx, mgmttest.NewKey(t), nil, func(*managementpb.SyncResponse) error { return nil })
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("sync of unknown peer: %v", err)
	}
}

// 50 agents race over real gRPC for one one-off key: exactly one peer.
func TestConcurrentOneOffOverGRPC(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := startEnv(t, b.Open(t))
		ctx := mgmttest.Ctx(t)
		plain := e.setupKey(t, management.SetupKeyInput{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, refused := 0, 0
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := mgmt.Dial(ctx, e.addr) // one connection per agent
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				_, err = c.Login(ctx, mgmttest.NewKey(t), &managementpb.LoginRequest{SetupKey: plain, Hostname: fmt.Sprintf("racer-%d", i)})
				mu.Lock()
				defer mu.Unlock()
				switch status.Code(err) {
				case codes.OK:
					wins++
				case codes.PermissionDenied, codes.ResourceExhausted: // used up, or the source's failures are
					refused++
				default:
					t.Errorf("racer %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 || refused != 49 || e.peers(t) != 1 {
			t.Fatalf("wins=%d refused=%d peers=%d", wins, refused, e.peers(t))
		}
	})
}

// Envelopes that do not open are InvalidArgument and change nothing.
func TestBadEnvelopes(t *testing.T) {
	e := startEnv(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	plain := e.setupKey(t, management.SetupKeyInput{Reusable: true})
	agent := mgmttest.NewKey(t)
	pub := agent.Public()
	server := e.svc.ServerKey().Public()
	ms, nonce := stamped()
	body, _ := proto.Marshal(&managementpb.LoginRequest{SetupKey: plain, Hostname: "evil", SentUnixMs: ms, Nonce: nonce})
	good, err := seal.Seal(body, server, agent)
	if err != nil {
		t.Fatal(err)
	}
	otherServer := mgmttest.NewKey(t).Public()
	wrongKey, _ := seal.Seal(body, otherServer, agent)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-5] ^= 0x40
	nonceFlip := append([]byte(nil), good...)
	nonceFlip[0] ^= 1
	big := make([]byte, MaxRequestBody+1)
	cases := map[string]*managementpb.EncryptedMessage{
		"truncated":        {WgPublicKey: pub[:], Body: good[:len(good)-1]},
		"short":            {WgPublicKey: pub[:], Body: good[:10]},
		"empty body":       {WgPublicKey: pub[:]},
		"flipped byte":     {WgPublicKey: pub[:], Body: flipped},
		"flipped nonce":    {WgPublicKey: pub[:], Body: nonceFlip},
		"wrong server key": {WgPublicKey: pub[:], Body: wrongKey},
		"other agent key":  {WgPublicKey: otherServer[:], Body: good},
		"short agent key":  {WgPublicKey: pub[:31], Body: good},
		"zero agent key":   {WgPublicKey: make([]byte, 32), Body: good},
		"oversize":         {WgPublicKey: pub[:], Body: big},
		"future version":   {WgPublicKey: pub[:], Body: good, Version: 99},
		"compressed":       {WgPublicKey: pub[:], Body: good, Compression: managementpb.Compression_COMPRESSION_ZSTD},
	}
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := managementpb.NewManagementClient(conn)
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := api.Login(ctx, msg)
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("login: %v", err)
			}
			stream, err := api.Sync(ctx, msg)
			if err == nil {
				_, err = stream.Recv()
			}
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("sync: %v", err)
			}
			if n := e.peers(t); n != 0 {
				t.Fatalf("a bad envelope registered a peer (%d peers)", n)
			}
		})
	}
	// A body that opens but is not a LoginRequest.
	junk, _ := seal.Seal([]byte{0xff, 0xff, 0xff}, server, agent)
	if _, err := api.Login(ctx, &managementpb.EncryptedMessage{WgPublicKey: pub[:], Body: junk}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("undecodable body: %v", err)
	}
	// The untouched envelope works (so the cases above failed for their defect).
	out, err := api.Login(ctx, &managementpb.EncryptedMessage{WgPublicKey: pub[:], Body: good, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seal.Open(out.GetBody(), server, agent); err != nil {
		t.Fatalf("response does not open for the agent: %v", err)
	}
	if e.peers(t) != 1 {
		t.Fatal("good envelope did not register")
	}
}

func TestCodeMapping(t *testing.T) {
	for kind, want := range map[management.ErrorKind]codes.Code{
		management.KindInvalid: codes.InvalidArgument, management.KindNotFound: codes.NotFound,
		management.KindConflict: codes.AlreadyExists, management.KindUnauthenticated: codes.Unauthenticated,
		management.KindPermission: codes.PermissionDenied, management.KindPrecondition: codes.FailedPrecondition,
		management.KindUnavailable: codes.Unavailable, management.KindInternal: codes.Internal,
	} {
		if got := Code(kind); got != want {
			t.Errorf("Code(%d) = %v, want %v", kind, got, want)
		}
	}
}
