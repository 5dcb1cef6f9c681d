package engine

import (
	"context"
	"net"

	"google.golang.org/grpc"

	"petrel/client/mgmt"
	"petrel/proto/managementpb"
)

// dialManagement opens the management client over control-plane sockets
// whose names resolve through the DNS cache once it runs (dialControl),
// with TLS for an https:// URL (tls.go).
func (e *Engine) dialManagement(ctx context.Context) (*mgmt.Client, error) {
	opts := append([]grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		return e.dialControl(ctx, "tcp", addr)
	}), grpc.WithConnectParams(mgmtConnectParams)}, e.managementDialOptions()...)
	return mgmt.Dial(ctx, e.cfg.ManagementURL, opts...)
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
	e.mgmt, err = e.dialManagement(ctx)
	if err != nil {
		return nil, err
	}
	defer e.mgmt.Close()
	return e.login(ctx)
}
