package server

import (
	"strings"
	"testing"

	"petrel/internal/keys"
	"petrel/management"
	"petrel/proto/managementpb"
	signalclient "petrel/signal/client"
)

// Signal admits only keys that management registered: a stranger's key is
// refused, a registered peer's accepted.
func TestSignalAdmitsOnlyRegisteredPeers(t *testing.T) {
	srv := start(t, loopbackConfig(t, t.TempDir()))
	ctx := testCtx(t)
	m := srv.Management()
	_, setupKey, err := m.CreateSetupKey(ctx, m.Accounts()[0], management.SetupKeyInput{Name: "t", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	peerKey, _ := keys.NewPrivate()
	if _, err := m.Login(ctx, peerKey.Public(), &managementpb.LoginRequest{SetupKey: setupKey, Hostname: "member"}); err != nil {
		t.Fatal(err)
	}
	stranger, _ := keys.NewPrivate()
	target := strings.TrimPrefix(srv.PublicURL(), "http://")
	dial := func(k keys.Private) *signalclient.Client {
		c := signalclient.New(signalclient.Config{Target: target, Key: k, Logger: testLog(t)})
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Stop)
		return c
	}
	bad := dial(stranger)
	waitFor(t, "stranger refused", func() bool { return srv.Signal().Stats().Unauthorized > 0 })
	good := dial(peerKey)
	waitFor(t, "member connected", good.Connected)
	if bad.Connected() {
		t.Fatal("an unregistered key holds a signal session")
	}
}
