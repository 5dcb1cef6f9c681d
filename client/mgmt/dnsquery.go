package mgmt

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/proto/managementpb"
)

// ReportDNSQuery sends the server the answer to a DNS test it asked for
// on the Sync stream (SyncResponse.dns_query). The server takes answers
// only while the agent's Sync stream is open, rate-limits them
// (ResourceExhausted) and ignores an answer to a query it is not waiting
// for; errors are gRPC statuses.
func (c *Client) ReportDNSQuery(ctx context.Context, priv keys.Private, res *managementpb.DNSQueryResult) error {
	server, err := c.ServerKey(ctx)
	if err != nil {
		return err
	}
	res = proto.CloneOf(res)
	res.SentUnixMs, res.Nonce = c.clock.stamp()
	env, err := envelope(res, server, priv)
	if err != nil {
		return err
	}
	out, err := c.api.ReportDNSQuery(ctx, env)
	if err != nil {
		return fmt.Errorf("report DNS query: %w", err)
	}
	if _, err := seal.Open(out.GetBody(), server, priv); err != nil {
		return fmt.Errorf("report DNS query: %w", ErrBadResponse)
	}
	return nil
}
