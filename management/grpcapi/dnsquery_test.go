package grpcapi

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"petrel/internal/seal"
	"petrel/management"
	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/proto/managementpb"
)

// A DNS test over gRPC: the query goes down the agent's Sync stream (next
// serial: the client checks), the agent answers with ReportDNSQuery. The
// answer RPC takes only a registered peer with a stream, once per sealed
// message.
func TestDNSQueryOverGRPC(t *testing.T) {
	e := startEnv(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	plain := e.setupKey(t, management.SetupKeyInput{Reusable: true})
	alpha := mgmttest.NewKey(t)
	resp, err := e.client.Login(ctx, alpha, &managementpb.LoginRequest{SetupKey: plain, Hostname: "alpha"})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetPeerConfig().GetPeerId()
	acct := e.svc.Accounts()[0]
	admin := management.WithPrincipal(ctx, management.Principal{AccountID: acct, Role: model.RoleOwner, Via: "admin-token"})

	if err := e.client.ReportDNSQuery(ctx, alpha, &managementpb.DNSQueryResult{Id: 1}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("answer without a sync stream: %v, want FailedPrecondition", err)
	}

	syncCtx, cancel := context.WithCancel(context.Background())
	first, done, syncErr := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	answered := make(chan struct{}, 8)
	go func() {
		defer close(done)
		opened := false
		req := &managementpb.SyncRequest{Capabilities: []managementpb.Capability{managementpb.Capability_CAPABILITY_DNS_QUERY}}
		syncErr <- e.client.Sync(syncCtx, alpha, req, func(r *managementpb.SyncResponse) error {
			if !opened {
				opened = true
				close(first)
			}
			if q := r.GetDnsQuery(); q != nil {
				go func() {
					defer func() { answered <- struct{}{} }()
					_ = e.client.ReportDNSQuery(syncCtx, alpha, &managementpb.DNSQueryResult{Id: q.GetId(), Rcode: "NXDOMAIN",
						Handler: "original", How: "upstream 192.0.2.53:53"})
				}()
			}
			return nil
		})
	}()
	defer func() { cancel(); <-done }()
	<-first

	for range 2 { // twice: the second query's serial must follow too
		res, err := e.svc.QueryDNS(admin, acct, id, "nothing.example", "A")
		if err != nil {
			t.Fatal(err)
		}
		if res.Rcode != "NXDOMAIN" || res.Handler != "original" || res.How != "upstream 192.0.2.53:53" {
			t.Fatalf("result %+v", res)
		}
		<-answered
	}
	select {
	case err := <-syncErr:
		t.Fatalf("sync ended: %v", err)
	default:
	}

	// The same sealed answer twice: the second is a replay.
	ms, nonce := stamped()
	body, _ := proto.Marshal(&managementpb.DNSQueryResult{SentUnixMs: ms, Nonce: nonce, Id: 12345})
	sealed, err := seal.Seal(body, e.svc.ServerKey().Public(), alpha)
	if err != nil {
		t.Fatal(err)
	}
	ak := alpha.Public()
	env := &managementpb.EncryptedMessage{WgPublicKey: ak[:], Body: sealed, Version: ProtocolVersion}
	if _, err := e.grpc.ReportDNSQuery(ctx, env); err != nil {
		t.Fatal(err)
	}
	if _, err := e.grpc.ReportDNSQuery(ctx, env); status.Code(err) != codes.Aborted {
		t.Fatalf("replayed answer: %v, want Aborted", err)
	}
	// Unstamped (no nonce): refused as from an agent before replay protection.
	body, _ = proto.Marshal(&managementpb.DNSQueryResult{Id: 12345})
	sealed, _ = seal.Seal(body, e.svc.ServerKey().Public(), alpha)
	if _, err := e.grpc.ReportDNSQuery(ctx, &managementpb.EncryptedMessage{WgPublicKey: ak[:], Body: sealed, Version: ProtocolVersion}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("unstamped answer: %v, want FailedPrecondition", err)
	}
	// Tampered: does not open.
	sealed[len(sealed)-1] ^= 1
	if _, err := e.grpc.ReportDNSQuery(ctx, &managementpb.EncryptedMessage{WgPublicKey: ak[:], Body: sealed, Version: ProtocolVersion}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("tampered answer: %v, want InvalidArgument", err)
	}
	if err := e.client.ReportDNSQuery(ctx, mgmttest.NewKey(t), &managementpb.DNSQueryResult{Id: 1}); status.Code(err) != codes.NotFound {
		t.Fatalf("stranger's answer: %v, want NotFound", err)
	}
}
