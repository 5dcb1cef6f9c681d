package grpcapi

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/management"
	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/proto/managementpb"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

func rawAPI(t *testing.T, e *env) managementpb.ManagementClient {
	t.Helper()
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return managementpb.NewManagementClient(conn)
}

func sealed(t *testing.T, e *env, agent keys.Private, msg proto.Message) *managementpb.EncryptedMessage {
	t.Helper()
	b, _ := proto.Marshal(msg)
	body, err := seal.Seal(b, e.svc.ServerKey().Public(), agent)
	if err != nil {
		t.Fatal(err)
	}
	pub := agent.Public()
	return &managementpb.EncryptedMessage{WgPublicKey: pub[:], Body: body, Version: ProtocolVersion}
}

func hostnameOf(t *testing.T, e *env, pk keys.Public) string {
	t.Helper()
	snap, _ := e.svc.Snapshot(e.acct)
	for _, p := range snap.Peers {
		if p.PublicKey == pk.String() {
			return p.Meta.Hostname
		}
	}
	t.Fatal("peer not found")
	return ""
}

// A captured Login replayed by someone on the path is refused and changes
// nothing; so is one stamped outside the window, or without a stamp.
func TestReplayedLoginRefused(t *testing.T) {
	e := startEnv(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	api := rawAPI(t, e)
	plain := e.setupKey(t, management.SetupKeyInput{Reusable: true})
	agent := mgmttest.NewKey(t)
	ms, nonce := stamped()
	captured := sealed(t, e, agent, &managementpb.LoginRequest{SetupKey: plain, Hostname: "old-name",
		Meta: &managementpb.PeerMeta{Hostname: "old-name"}, SentUnixMs: ms, Nonce: nonce})
	if _, err := api.Login(ctx, captured); err != nil {
		t.Fatal(err)
	}
	// The real agent logs in again under its new name.
	if _, err := e.client.Login(ctx, agent, &managementpb.LoginRequest{Hostname: "new-name",
		Meta: &managementpb.PeerMeta{Hostname: "new-name"}}); err != nil {
		t.Fatal(err)
	}
	_, err := api.Login(ctx, captured)
	if status.Code(err) != codes.Aborted {
		t.Fatalf("replayed login: %v, want Aborted (refused, and retryable for the honest agent)", err)
	}
	if h := hostnameOf(t, e, agent.Public()); h != "new-name" {
		t.Fatalf("the replay changed the hostname to %q", h)
	}
	old := time.Now().Add(-2 * ReplayWindow).UnixMilli()
	_, n2 := stamped()
	for name, tc := range map[string]struct {
		req  *managementpb.LoginRequest
		want codes.Code
	}{
		"stale":     {&managementpb.LoginRequest{Hostname: "stale", Meta: &managementpb.PeerMeta{Hostname: "stale"}, SentUnixMs: old, Nonce: n2}, codes.Aborted},
		"unstamped": {&managementpb.LoginRequest{Hostname: "bare", Meta: &managementpb.PeerMeta{Hostname: "bare"}}, codes.FailedPrecondition},
	} {
		if _, err := api.Login(ctx, sealed(t, e, agent, tc.req)); status.Code(err) != tc.want {
			t.Fatalf("%s login: %v, want %v", name, err, tc.want)
		}
	}
	if h := hostnameOf(t, e, agent.Public()); h != "new-name" {
		t.Fatalf("a refused login changed the hostname to %q", h)
	}
}

// A replayed Sync request cannot evict the agent's live stream.
func TestReplayedSyncRefusedStreamKept(t *testing.T) {
	e := startEnv(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	api := rawAPI(t, e)
	plain := e.setupKey(t, management.SetupKeyInput{Reusable: true})
	agent := mgmttest.NewKey(t)
	if _, err := e.client.Login(ctx, agent, &managementpb.LoginRequest{SetupKey: plain, Hostname: "a"}); err != nil {
		t.Fatal(err)
	}
	ms, nonce := stamped()
	captured := sealed(t, e, agent, &managementpb.SyncRequest{SentUnixMs: ms, Nonce: nonce})
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	live, err := api.Sync(sctx, captured)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := live.Recv(); err != nil {
		t.Fatalf("first message: %v", err)
	}
	replayed, err := api.Sync(ctx, captured)
	if err == nil {
		_, err = replayed.Recv()
	}
	if status.Code(err) != codes.Aborted {
		t.Fatalf("replayed sync: %v, want Aborted", err)
	}
	// The live stream still gets the next change (a policy that lets a
	// second peer into its map).
	if _, err := e.client.Login(ctx, mgmttest.NewKey(t), &managementpb.LoginRequest{SetupKey: plain, Hostname: "b"}); err != nil {
		t.Fatal(err)
	}
	snap, _ := e.svc.Snapshot(e.acct)
	var all string
	for id, g := range snap.Groups {
		if g.Name == model.AllGroupName {
			all = id
		}
	}
	if _, err := e.svc.Put(ctx, e.acct, &model.Policy{Name: "mesh", Enabled: true, Rules: []model.PolicyRule{{
		Sources: []string{all}, Destinations: []string{all}, Bidirectional: true}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Recv(); err != nil {
		t.Fatalf("the live stream was cut by the replay: %v", err)
	}
}

// An envelope from a low-order "key" opens for anyone (all-zero shared
// secret); it is refused before it is opened.
func TestLowOrderSenderKeyRefused(t *testing.T) {
	e := startEnv(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	api := rawAPI(t, e)
	plain := e.setupKey(t, management.SetupKeyInput{Reusable: true})
	var lowOrder keys.Public
	lowOrder[0] = 1 // u = 1: a point of order 4
	forger := mgmttest.NewKey(t)
	ms, nonce := stamped()
	b, _ := proto.Marshal(&managementpb.LoginRequest{SetupKey: plain, Hostname: "forged", SentUnixMs: ms, Nonce: nonce})
	// X25519(forger, u=1) is all zeros, as is X25519(server, u=1): the
	// forger seals with the key the server derives.
	body, err := seal.Seal(b, lowOrder, forger)
	if err != nil {
		t.Fatal(err)
	}
	_, err = api.Login(ctx, &managementpb.EncryptedMessage{WgPublicKey: lowOrder[:], Body: body, Version: ProtocolVersion})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("low-order sender: %v, want InvalidArgument", err)
	}
	if n := e.peers(t); n != 0 {
		t.Fatalf("a forged envelope registered %d peers", n)
	}
}

// Wrong setup keys over gRPC: after the source's failures are used up the
// answer is ResourceExhausted with a retry hint.
func TestSetupKeyGuessingOverGRPC(t *testing.T) {
	e := startEnv(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	var last error
	for range management.DefaultLoginFailBurst + 1 {
		_, last = e.client.Login(ctx, mgmttest.NewKey(t), &managementpb.LoginRequest{SetupKey: "psk_guess"})
	}
	st := status.Convert(unwrapStatus(last))
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("after %d wrong keys: %v", management.DefaultLoginFailBurst+1, last)
	}
	var hint bool
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() >= time.Second {
			hint = true
		}
	}
	if !hint {
		t.Fatalf("no retry hint in %v", st.Details())
	}
}

// unwrapStatus digs the gRPC status out of a wrapped client error.
func unwrapStatus(err error) error {
	for e := err; e != nil; {
		if _, ok := status.FromError(e); ok {
			return e
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return err
}

// Strangers (no registered key, no valid setup key) are refused before
// anything is remembered about them: they cannot fill the replay memory.
func TestStrangersUseNoReplayMemory(t *testing.T) {
	e := startEnv(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	api := rawAPI(t, e)
	for i := range 20 {
		ms, nonce := stamped()
		stranger := mgmttest.NewKey(t)
		req := &managementpb.LoginRequest{SetupKey: "psk_guess", SentUnixMs: ms, Nonce: nonce}
		if i%2 == 1 {
			req.SetupKey = ""
		}
		if _, err := api.Login(ctx, sealed(t, e, stranger, req)); status.Code(err) == codes.OK {
			t.Fatal("a stranger logged in")
		}
		s, err := api.Sync(ctx, sealed(t, e, stranger, &managementpb.SyncRequest{SentUnixMs: ms, Nonce: nonce}))
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("stranger's sync: %v, want PermissionDenied", err)
		}
	}
	if n := e.grpc.replay.Len(); n != 0 {
		t.Fatalf("strangers left %d nonces in the replay memory", n)
	}
}
