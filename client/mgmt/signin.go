package mgmt

import (
	"context"
	"fmt"

	"petrel/proto/managementpb"
)

// SignIn asks the server how people sign in: its OpenID provider's issuer,
// the agents' client ID and the scopes to ask for; nil when the server has
// no provider (setup keys only). It is public information (no key needed).
func (c *Client) SignIn(ctx context.Context) (*managementpb.SignIn, error) {
	resp, err := c.api.ServerKey(ctx, &managementpb.ServerKeyRequest{})
	if err != nil {
		return nil, fmt.Errorf("ask the server about sign-in: %w", err)
	}
	si := resp.GetSignIn()
	if si.GetIssuer() == "" {
		return nil, nil
	}
	if si.GetClientId() == "" {
		return nil, fmt.Errorf("ask the server about sign-in: %w (issuer without a client ID)", ErrBadResponse)
	}
	return si, nil
}
