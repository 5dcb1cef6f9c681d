package grpcapi

import (
	"context"
	"net/netip"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/management"
	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/proto/managementpb"
)

// Route reports over gRPC: a malformed entry is InvalidArgument and
// nothing is recorded; a good one reaches RouteHealth.
func TestRouteReportsOverGRPC(t *testing.T) {
	e := startEnv(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	plain := e.setupKey(t, management.SetupKeyInput{Reusable: true})
	client, router := mgmttest.NewKey(t), mgmttest.NewKey(t)
	if _, err := e.client.Login(ctx, client, &managementpb.LoginRequest{SetupKey: plain, Hostname: "client"}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.client.Login(ctx, router, &managementpb.LoginRequest{SetupKey: plain, Hostname: "router"})
	if err != nil {
		t.Fatal(err)
	}
	routerID := resp.GetPeerConfig().GetPeerId()
	acct := e.svc.Accounts()[0]
	snap, _ := e.svc.Snapshot(acct)
	if _, err := e.svc.Put(ctx, acct, &model.Route{Network: netip.MustParsePrefix("10.20.0.0/24"), Peer: routerID,
		Groups: []string{allGroup(t, snap)}, Enabled: true}); err != nil {
		t.Fatal(err)
	}

	syncCtx, cancel := context.WithCancel(context.Background())
	first, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		opened := false
		_ = e.client.Sync(syncCtx, client, nil, func(*managementpb.SyncResponse) error {
			if !opened {
				opened = true
				close(first)
			}
			return nil
		})
	}()
	defer func() { cancel(); <-done }()
	<-first

	rk := router.Public()
	bad := &managementpb.ReportPeersRequest{Full: true, Routes: []*managementpb.RouteReport{
		{Network: "10.20.0.0/24", PeerPublicKey: rk[:16], Reason: "connected, direct"}}}
	if err := e.client.ReportPeers(ctx, client, bad); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("report with a 16-byte routing peer key: %v, want InvalidArgument", err)
	}
	if h, err := e.svc.RouteHealth(acct); err != nil || len(h) != 0 {
		t.Fatalf("route health after a refused report = %v, %v; want nothing", h, err)
	}
	good := &managementpb.ReportPeersRequest{Full: true, Routes: []*managementpb.RouteReport{
		{Network: "10.20.0.0/24", PeerPublicKey: rk[:], Reason: "connected, direct", ActiveMs: 1000}}}
	if err := e.client.ReportPeers(ctx, client, good); err != nil {
		t.Fatal(err)
	}
	h, err := e.svc.RouteHealth(acct)
	if err != nil {
		t.Fatal(err)
	}
	if u := h["10.20.0.0/24"]; u.Clients != 1 || u.Active[routerID] != 1 {
		t.Fatalf("route health = %+v, want the client through the router", h)
	}
}
