package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateAdminTokenRecoversLostToken(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	srv := start(t, loopbackConfig(t, dir))
	acct := srv.Management().Accounts()[0]
	srv.Stop()
	if err := os.Remove(srv.TokenFile()); err != nil { // the lost file
		t.Fatal(err)
	}

	token, got, err := CreateAdminToken(ctx, AdminTokenRequest{DataDir: dir, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if got != acct || !strings.HasPrefix(token, "ptok_") {
		t.Fatalf("account %q token %q", got, token)
	}
	// An explicit account and name work too.
	if _, _, err := CreateAdminToken(ctx, AdminTokenRequest{DataDir: dir, Account: acct, Name: "second"}); err != nil {
		t.Fatal(err)
	}

	srv2 := start(t, loopbackConfig(t, dir))
	var peers []peerJSON
	if code := getJSON(t, "http://"+srv2.Addr().String(), "/api/peers", token, &peers); code != 200 {
		t.Fatalf("recovered token rejected: %d", code)
	}
	if _, err := os.Stat(srv2.TokenFile()); !os.IsNotExist(err) {
		t.Fatalf("restart rewrote the token file: %v", err)
	}
	// Two accounts: the choice must be explicit.
	if _, _, err := srv2.Management().CreateAccount(ctx); err != nil {
		t.Fatal(err)
	}
	srv2.Stop()

	for _, tc := range []struct {
		name string
		req  AdminTokenRequest
		want string
	}{
		{"several accounts", AdminTokenRequest{DataDir: dir}, "choose one with --account"},
		{"unknown account", AdminTokenRequest{DataDir: dir, Account: "nope"}, `account "nope" not found`},
		{"no database", AdminTokenRequest{DataDir: t.TempDir()}, "no database at"},
		{"bad store", AdminTokenRequest{DataDir: dir, Store: "mysql://x"}, "unknown store type"},
		{"bad name", AdminTokenRequest{DataDir: dir, Account: acct, Name: strings.Repeat("n", 300)}, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := CreateAdminToken(ctx, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// A store without accounts is not bootstrapped by the tool.
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "petrel.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := CreateAdminToken(ctx, AdminTokenRequest{DataDir: empty}); err == nil || !strings.Contains(err.Error(), "no account yet") {
		t.Fatalf("empty store: %v", err)
	}
}
