package daemon_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"petrel/client/daemon"
	"petrel/management"
	"petrel/proto/daemonpb"
	"petrel/server"
)

func startServerAt(t *testing.T, dir, listen string) *server.Server {
	t.Helper()
	srv, err := server.New(server.Config{DataDir: dir, Listen: listen, STUNListen: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return srv
}

// An agent whose daemon starts while management is down keeps trying
// and comes up by itself when management returns, however long that takes
// (here: longer than one attempt).
func TestDaemonStartedDuringOutageComesBack(t *testing.T) {
	defer daemon.SetReconnectAttempt(time.Second)()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	data := t.TempDir()
	srv := startServerAt(t, data, listen)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, key, err := srv.Management().CreateSetupKey(ctx, srv.Management().Accounts()[0],
		management.SetupKeyInput{Name: "t", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := shortDir(t)
	_, cl, stop := startDaemon(t, dir)
	if err := up(cl, &daemonpb.UpRequest{ManagementUrl: srv.PublicURL(), SetupKey: key, Hostname: "phoenix", TimeoutMs: 20000}); err != nil {
		t.Fatal(err)
	}
	stop()
	srv.Stop()

	_, cl, stop = startDaemon(t, dir) // management is down
	defer stop()
	time.Sleep(4 * time.Second) // several failed attempts
	if st := status(t, cl); st.State == "connected" {
		t.Fatalf("connected without management: %+v", st)
	}
	srv = startServerAt(t, data, listen)
	defer srv.Stop()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := status(t, cl)
		if st.State == "connected" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent did not come back after management returned: state %q, last error %q", st.State, st.LastError)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
