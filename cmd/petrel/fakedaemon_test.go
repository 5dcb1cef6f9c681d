package main

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"petrel/proto/daemonpb"
)

// fakeDaemon answers the daemon API on a unix socket with canned replies,
// so the real binary's output can be checked without a network.
type fakeDaemon struct {
	daemonpb.UnimplementedDaemonServer
	mu      sync.Mutex // guards the replies below, changed between runs
	status  *daemonpb.StatusResponse
	replies []*daemonpb.PingReply
	dns     string // DNSStatus JSON
}

func (f *fakeDaemon) Status(context.Context, *daemonpb.StatusRequest) (*daemonpb.StatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, nil
}

func (f *fakeDaemon) Ping(_ *daemonpb.PingRequest, s daemonpb.Daemon_PingServer) error {
	f.mu.Lock()
	replies := f.replies
	f.mu.Unlock()
	for _, r := range replies {
		if err := s.Send(r); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeDaemon) DNSStatus(context.Context, *daemonpb.DNSStatusRequest) (*daemonpb.JSONReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &daemonpb.JSONReply{Json: f.dns}, nil
}

// serve starts f on a socket in a new directory and returns its path.
func (f *fakeDaemon) serve(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(stateDir(t), "fake.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	daemonpb.RegisterDaemonServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return sock
}

// twoPeers is a status with a direct and a relayed peer and an exit node.
func twoPeers() *daemonpb.StatusResponse {
	return &daemonpb.StatusResponse{
		State: "connected",
		Peers: []*daemonpb.PeerStatus{
			{Name: "alpha", Fqdn: "alpha.petrel.internal", Ip: "100.64.0.2", PublicKey: "KEYALPHA", Status: "connected", Path: "p2p", LatencyMs: 1.5},
			{Name: "beta", Fqdn: "beta.petrel.internal", Ip: "100.64.0.3", PublicKey: "KEYBETA", Status: "connected", Path: "relay"},
		},
		Routes: []*daemonpb.RouteStatus{
			{Id: "r1", NetworkId: "lan", Network: "10.1.0.0/16", Peer: "KEYALPHA", PeerName: "alpha", Metric: 100, State: "installed", Chosen: true},
			{Id: "r2", NetworkId: "inet", Network: "0.0.0.0/0", Peer: "KEYBETA", PeerName: "beta", Metric: 100, State: "standby"},
		},
		ExitNode: &daemonpb.ExitNodeStatus{Reason: "off"},
	}
}

// setReplies changes the ping replies of the next runs.
func (f *fakeDaemon) setReplies(r ...*daemonpb.PingReply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies = r
}
