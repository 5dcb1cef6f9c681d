package daemon_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"petrel/client/daemon"
	"petrel/proto/daemonpb"
)

// A config.json that does not parse is reported, not read as empty: status
// says why instead of "needs-login", up and login refuse with the fix, the
// file is left as it was and nothing registers. Removing it starts over.
func TestCorruptConfigRefused(t *testing.T) {
	srv, key := startServer(t)
	defer srv.Stop()
	dir := shortDir(t)
	garbage := []byte(`{"management_url": "` + srv.PublicURL() + `", "registered": tr`)
	cfgPath := filepath.Join(dir, daemon.ConfigFile)
	if err := os.WriteFile(cfgPath, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	_, cl, stop := startDaemon(t, dir)
	defer stop()

	corrupt := func(what, msg string) {
		t.Helper()
		for _, want := range []string{"config.json is corrupt", "remove it to start over"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: %q does not say %q", what, msg, want)
			}
		}
	}
	st := status(t, cl)
	if st.State != "down" {
		t.Errorf("status state %q, want down (not needs-login: registration is unknown)", st.State)
	}
	corrupt("status", st.LastError)

	err := up(cl, &daemonpb.UpRequest{ManagementUrl: srv.PublicURL(), SetupKey: key, Hostname: "h", TimeoutMs: 10000})
	if grpcstatus.Code(err) != codes.FailedPrecondition {
		t.Fatalf("up: %v, want FailedPrecondition", err)
	}
	corrupt("up", grpcstatus.Convert(err).Message())

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = cl.Login(ctx, &daemonpb.LoginRequest{ManagementUrl: srv.PublicURL(), SetupKey: key, Hostname: "h", TimeoutMs: 10000})
	if grpcstatus.Code(err) != codes.FailedPrecondition {
		t.Fatalf("login: %v, want FailedPrecondition", err)
	}
	corrupt("login", grpcstatus.Convert(err).Message())

	if b, err := os.ReadFile(cfgPath); err != nil || !bytes.Equal(b, garbage) {
		t.Fatalf("config.json changed: %q %v", b, err)
	}
	snap, _ := srv.Management().Snapshot(srv.Management().Accounts()[0])
	if len(snap.Peers) != 0 {
		t.Fatalf("%d peers registered from a corrupt state dir", len(snap.Peers))
	}

	// The advice works: without config.json the agent registers.
	if err := os.Remove(cfgPath); err != nil {
		t.Fatal(err)
	}
	if st := status(t, cl); st.State != "needs-login" || st.LastError != "" {
		t.Fatalf("status without config.json: %q %q", st.State, st.LastError)
	}
	if err := up(cl, &daemonpb.UpRequest{ManagementUrl: srv.PublicURL(), SetupKey: key, Hostname: "h", TimeoutMs: 20000}); err != nil {
		t.Fatalf("up after removing config.json: %v", err)
	}
	if _, err := cl.Down(context.Background(), &daemonpb.DownRequest{}); err != nil {
		t.Fatal(err)
	}
}
