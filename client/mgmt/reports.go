package mgmt

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/proto/managementpb"
)

// ReportPeers sends the server this agent's view of its peers' paths (for
// the dashboard's connectivity matrix). The server takes reports only
// while the agent's Sync stream is open and rate-limits them
// (ResourceExhausted); errors are gRPC statuses.
func (c *Client) ReportPeers(ctx context.Context, priv keys.Private, req *managementpb.ReportPeersRequest) error {
	server, err := c.ServerKey(ctx)
	if err != nil {
		return err
	}
	req = proto.CloneOf(req)
	req.SentUnixMs, req.Nonce = c.clock.stamp()
	env, err := envelope(req, server, priv)
	if err != nil {
		return err
	}
	out, err := c.api.ReportPeers(ctx, env)
	if err != nil {
		return fmt.Errorf("report peers: %w", err)
	}
	if _, err := seal.Open(out.GetBody(), server, priv); err != nil {
		return fmt.Errorf("report peers: %w", ErrBadResponse)
	}
	return nil
}
