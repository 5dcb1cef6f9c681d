package identity

import (
	"context"
	"testing"
	"time"

	"petrel/client/oidcdevice"
	"petrel/internal/oidctest"
)

// TestDeviceFlowIDToken: the ID token a real device flow returns (the
// provider's approval pages driven over HTTP) verifies without a nonce and
// carries the user's claims and groups.
func TestDeviceFlowIDToken(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{Users: []oidctest.User{{Subject: "u1", Email: "alice@example.com",
		EmailVerified: true, Name: "Alice", Groups: []string{"eng", "ops"}}}})
	ctx := context.Background()
	v, err := New(ctx, Config{Issuer: p.Issuer(), ClientID: p.ClientID(), GroupsClaim: p.GroupsClaim(), HTTPClient: p.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	a, err := oidcdevice.Start(ctx, oidcdevice.Config{Issuer: p.Issuer(), ClientID: p.ClientID(),
		Scopes: []string{"openid", "email", "profile", p.GroupsScope()}, HTTPClient: p.HTTPClient(),
		Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	p.ApproveDevice(t, a.UserCode, "u1")
	tok, err := a.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(ctx, tok.IDToken)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "u1" || id.Email != "alice@example.com" || !id.EmailVerified || len(id.Groups) != 2 {
		t.Fatalf("identity %+v", id)
	}
}
