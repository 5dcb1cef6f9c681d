package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/management"
	"petrel/proto/managementpb"
	"petrel/proto/signalpb"
	signalclient "petrel/signal/client"
)

// Signal admits only keys that management registered: a stranger's key is
// refused with PermissionDenied right after it proves possession of the
// key, a registered peer's accepted.
func TestSignalAdmitsOnlyRegisteredPeers(t *testing.T) {
	srv := start(t, loopbackConfig(t, t.TempDir()))
	ctx := testCtx(t)
	m := srv.Management()
	_, setupKey, err := m.CreateSetupKey(ctx, m.Accounts()[0], management.SetupKeyInput{Name: "t", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	peerKey, _ := keys.NewPrivate()
	if _, err := m.Login(ctx, peerKey.Public(), &managementpb.LoginRequest{SetupKey: setupKey, Hostname: "member"}); err != nil {
		t.Fatal(err)
	}
	stranger, _ := keys.NewPrivate()
	target := strings.TrimPrefix(srv.PublicURL(), "http://")

	cc, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	// register runs the signal handshake for k on a bare stream and
	// returns how it ended: nil once Registered, else the status that
	// ended the stream. Every step is bounded by a few seconds, so an
	// admitted stranger fails the test at once instead of at a timeout.
	register := func(k keys.Private) error {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := signalpb.NewSignalClient(cc).Connect(sctx)
		if err != nil {
			t.Fatal(err)
		}
		pub := k.Public()
		_ = st.Send(&signalpb.ClientFrame{Kind: &signalpb.ClientFrame_Hello{Hello: &signalpb.Hello{PublicKey: pub[:]}}})
		f, err := st.Recv()
		if err != nil {
			t.Fatalf("hello of %s: %v", pub.Short(), err)
		}
		ch := f.GetChallenge()
		if ch == nil {
			t.Fatalf("expected a challenge, got %v", f)
		}
		spub, err := keys.PublicFromBytes(ch.GetServerPublicKey())
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := seal.Seal(ch.GetNonce(), spub, k)
		if err != nil {
			t.Fatal(err)
		}
		_ = st.Send(&signalpb.ClientFrame{Kind: &signalpb.ClientFrame_ChallengeResponse{ChallengeResponse: &signalpb.ChallengeResponse{Sealed: sealed}}})
		f, err = st.Recv()
		if err != nil {
			return err
		}
		if f.GetRegistered() == nil {
			t.Fatalf("expected Registered or the end of the stream, got %v", f)
		}
		return nil
	}

	err = register(stranger)
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("an unregistered key's signal registration ended with %v, want PermissionDenied (nil: it was admitted)", err)
	}
	if n := srv.Signal().Stats().Unauthorized; n != 1 {
		t.Fatalf("signal counted %d unauthorized registrations, want 1", n)
	}
	if err := register(peerKey); err != nil {
		t.Fatalf("the registered peer was refused: %v", err)
	}

	// The real client: the member connects, the stranger never does.
	dial := func(k keys.Private) *signalclient.Client {
		c := signalclient.New(signalclient.Config{Target: target, Key: k, Logger: testLog(t)})
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Stop)
		return c
	}
	bad := dial(stranger)
	good := dial(peerKey)
	waitFor(t, "member connected", good.Connected)
	if bad.Connected() {
		t.Fatal("an unregistered key holds a signal session")
	}
}
