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

// Logout deletes the sealing peer, frees its name, refuses a replay, and
// treats an unknown key as already gone.
func TestLogoutOverGRPC(t *testing.T) {
	e := startEnv(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	plain := e.setupKey(t, management.SetupKeyInput{Reusable: true})
	k, other := mgmttest.NewKey(t), mgmttest.NewKey(t)
	for name, key := range map[string]keys.Private{"alpha": k, "beta": other} {
		if _, err := e.client.Login(ctx, key, &managementpb.LoginRequest{SetupKey: plain, Hostname: name}); err != nil {
			t.Fatal(err)
		}
	}
	// A replayed logout of beta's is refused and deletes nothing.
	server := e.svc.ServerKey().Public()
	ms, nonce := stamped()
	body, _ := proto.Marshal(&managementpb.LogoutRequest{SentUnixMs: ms, Nonce: nonce})
	sealed, err := seal.Seal(body, server, other)
	if err != nil {
		t.Fatal(err)
	}
	pub := other.Public()
	env := &managementpb.EncryptedMessage{WgPublicKey: pub[:], Body: sealed, Version: ProtocolVersion}
	if _, err := e.grpc.Logout(ctx, env); err != nil {
		t.Fatalf("logout beta: %v", err)
	}
	if n := e.peers(t); n != 1 {
		t.Fatalf("%d peers after beta's logout, want 1", n)
	}
	if _, err := e.client.Login(ctx, other, &managementpb.LoginRequest{SetupKey: plain, Hostname: "beta"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.grpc.Logout(ctx, env); status.Code(err) != codes.Aborted {
		t.Fatalf("replayed logout: %v", err)
	}
	if n := e.peers(t); n != 2 {
		t.Fatalf("a replayed logout deleted a peer: %d peers", n)
	}
	// The client's logout: alpha is gone and its name is free again.
	if err := e.client.Logout(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Logout(ctx, k); err != nil {
		t.Fatalf("second logout of a deleted peer: %v", err)
	}
	if _, err := e.grpc.Logout(ctx, env); status.Code(err) == codes.OK {
		t.Fatal("replayed logout succeeded")
	}
	resp, err := e.client.Login(ctx, mgmttest.NewKey(t), &managementpb.LoginRequest{SetupKey: plain, Hostname: "alpha"})
	if err != nil || resp.GetPeerConfig().GetFqdn() != "alpha.petrel.internal" {
		t.Fatalf("the name of a logged-out peer is not free: %v %v", resp.GetPeerConfig().GetFqdn(), err)
	}
}
