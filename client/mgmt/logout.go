package mgmt

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/proto/managementpb"
)

// Logout asks the server to delete the peer registered with priv's public
// key (`petrel logout`). A server that no longer knows the key answers
// NotFound, which Logout reports as success: the peer is gone either way.
// Other errors are gRPC statuses (Unavailable when the server is down).
func (c *Client) Logout(ctx context.Context, priv keys.Private) error {
	server, err := c.ServerKey(ctx)
	if err != nil {
		return err
	}
	req := &managementpb.LogoutRequest{}
	req.SentUnixMs, req.Nonce = c.clock.stamp()
	env, err := envelope(req, server, priv)
	if err != nil {
		return err
	}
	out, err := c.api.Logout(ctx, env)
	if status.Code(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	if _, err := seal.Open(out.GetBody(), server, priv); err != nil {
		return fmt.Errorf("logout: %w", ErrBadResponse)
	}
	return nil
}
