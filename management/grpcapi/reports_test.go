package grpcapi

import (
	"context"
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

// ReportPeers over gRPC: only with an open Sync stream, once per sealed
// message, never from a stranger; what it reports reaches Connectivity.
func TestReportPeersOverGRPC(t *testing.T) {
	e := startEnv(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	plain := e.setupKey(t, management.SetupKeyInput{Reusable: true})
	alpha, beta := mgmttest.NewKey(t), mgmttest.NewKey(t)
	ids := map[keys.Private]string{}
	for name, key := range map[string]keys.Private{"alpha": alpha, "beta": beta} {
		resp, err := e.client.Login(ctx, key, &managementpb.LoginRequest{SetupKey: plain, Hostname: name})
		if err != nil {
			t.Fatal(err)
		}
		ids[key] = resp.GetPeerConfig().GetPeerId()
	}
	bk := beta.Public()
	req := &managementpb.ReportPeersRequest{Full: true, Peers: []*managementpb.PeerPathReport{
		{PublicKey: bk[:], State: managementpb.PeerPathState_PEER_PATH_STATE_RELAYED, Reason: "forced"}}}
	if err := e.client.ReportPeers(ctx, alpha, req); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("report without a sync stream: %v, want FailedPrecondition", err)
	}

	syncCtx, cancel := context.WithCancel(context.Background())
	first, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		opened := false
		_ = e.client.Sync(syncCtx, alpha, nil, func(*managementpb.SyncResponse) error {
			if !opened {
				opened = true
				close(first)
			}
			return nil
		})
	}()
	defer func() { cancel(); <-done }()
	<-first

	if err := e.client.ReportPeers(ctx, alpha, req); err != nil {
		t.Fatal(err)
	}
	acct := e.svc.Accounts()[0]
	m, err := e.svc.Connectivity(acct, []string{ids[alpha]}, []string{ids[beta]})
	if err != nil {
		t.Fatal(err)
	}
	if p := m.Pair(ids[alpha], ids[beta]); p.AtoB.State != management.PathRelayed || p.AtoB.Reason != "forced" {
		t.Fatalf("alpha's view of beta = %+v", p.AtoB)
	}

	// The same sealed report twice: the second is a replay.
	ms, nonce := stamped()
	r2 := proto.CloneOf(req)
	r2.SentUnixMs, r2.Nonce = ms, nonce
	body, _ := proto.Marshal(r2)
	sealed, err := seal.Seal(body, e.svc.ServerKey().Public(), alpha)
	if err != nil {
		t.Fatal(err)
	}
	ak := alpha.Public()
	env := &managementpb.EncryptedMessage{WgPublicKey: ak[:], Body: sealed, Version: ProtocolVersion}
	if _, err := e.grpc.ReportPeers(ctx, env); err != nil {
		t.Fatal(err)
	}
	if _, err := e.grpc.ReportPeers(ctx, env); status.Code(err) != codes.Aborted {
		t.Fatalf("replayed report: %v, want Aborted", err)
	}
	if err := e.client.ReportPeers(ctx, mgmttest.NewKey(t), req); status.Code(err) != codes.NotFound {
		t.Fatalf("stranger's report: %v, want NotFound", err)
	}
}
