package grpcapi

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/management"
	"petrel/management/internal/mgmttest"
	"petrel/proto/managementpb"
)

// The all-zero "key" is a low-order point: X25519 of any scalar with it is
// all zeros, so the server would derive the same shared key as any forger.
// A Login or Sync sealed with the zero key the way an attacker would (the
// forger seals for the zero key with any private key of his) is refused
// before it is opened, and registers nothing.
func TestZeroSenderKeyRefused(t *testing.T) {
	e := startEnv(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	api := rawAPI(t, e)
	plain := e.setupKey(t, management.SetupKeyInput{Reusable: true})
	var zero keys.Public
	forger := mgmttest.NewKey(t)
	for _, rpc := range []string{"login", "sync"} {
		ms, nonce := stamped()
		var msg proto.Message = &managementpb.LoginRequest{SetupKey: plain, Hostname: "forged",
			Meta: &managementpb.PeerMeta{Hostname: "forged"}, SentUnixMs: ms, Nonce: nonce}
		if rpc == "sync" {
			msg = &managementpb.SyncRequest{SentUnixMs: ms, Nonce: nonce}
		}
		b, err := proto.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		body, err := seal.Seal(b, zero, forger)
		if err != nil {
			t.Fatal(err)
		}
		env := &managementpb.EncryptedMessage{WgPublicKey: zero[:], Body: body, Version: ProtocolVersion}
		// The envelope really is forgeable: the server's own key opens it.
		if _, err := seal.Open(body, zero, e.svc.ServerKey()); err != nil {
			t.Fatalf("the forged %s body does not open with the server key (%v): the test forges nothing", rpc, err)
		}
		if rpc == "login" {
			_, err = api.Login(ctx, env)
		} else {
			s, serr := api.Sync(ctx, env)
			if err = serr; err == nil {
				_, err = s.Recv()
			}
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("%s from the zero key: %v, want InvalidArgument", rpc, err)
		}
	}
	if n := e.peers(t); n != 0 {
		t.Fatalf("a forged envelope from the zero key registered %d peers", n)
	}
}
