package engine

import (
	"context"
	"net"

	"google.golang.org/grpc"

	"petrel/client/mgmt"
	"petrel/client/netx"
	"petrel/proto/managementpb"
)

// dialManagement opens the management client over a control-plane socket.
func dialManagement(ctx context.Context, cfg Config) (*mgmt.Client, error) {
	dialer := netx.Dialer(cfg.Logger)
	return mgmt.Dial(ctx, cfg.ManagementURL, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		return dialer.DialContext(ctx, "tcp", addr)
	}), grpc.WithConnectParams(mgmtConnectParams))
}

// Register logs in once — registering with cfg.SetupKey when management
// does not know the key yet — without creating a device or connecting to
// peers (`petrel login`). It retries while management is unreachable until
// ctx ends; refusals fail at once.
func Register(ctx context.Context, cfg Config) (*managementpb.LoginResponse, error) {
	e, err := New(cfg)
	if err != nil {
		return nil, err
	}
	e.mgmt, err = dialManagement(ctx, e.cfg)
	if err != nil {
		return nil, err
	}
	defer e.mgmt.Close()
	return e.login(ctx)
}
