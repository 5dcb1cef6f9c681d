package daemon_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"petrel/client/daemon"
	"petrel/management"
	"petrel/proto/daemonpb"
	"petrel/server"
)

func startServer(t *testing.T) (*server.Server, string) {
	t.Helper()
	srv, err := server.New(server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0",
		STUNListen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	_, key, err := srv.Management().CreateSetupKey(ctx, srv.Management().Accounts()[0],
		management.SetupKeyInput{Name: "t", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	return srv, key
}

// shortDir returns a temp dir with a path short enough for a unix socket.
func shortDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "pd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func startDaemon(t *testing.T, dir string) (*daemon.Daemon, daemonpb.DaemonClient, func()) {
	t.Helper()
	d := daemon.New(daemon.Options{StateDir: dir, Netstack: true, SOCKS5Addr: "127.0.0.1:0",
		ICELoopback: true, Logger: slog.New(slog.DiscardHandler)})
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(d.Socket())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	conn, err := grpc.NewClient("unix://"+d.Socket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	return d, daemonpb.NewDaemonClient(conn), func() { conn.Close(); d.Stop() }
}

func up(cl daemonpb.DaemonClient, req *daemonpb.UpRequest) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := cl.Up(ctx, req)
	if err != nil {
		return err
	}
	for {
		_, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func status(t *testing.T, cl daemonpb.DaemonClient) *daemonpb.StatusResponse {
	t.Helper()
	st, err := cl.Status(context.Background(), &daemonpb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestUpDownCyclesNoLeaks(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv, key := startServer(t)
	defer srv.Stop()
	dir := shortDir(t)
	_, cl, stop := startDaemon(t, dir)
	for i := 0; i < 3; i++ {
		req := &daemonpb.UpRequest{ManagementUrl: srv.PublicURL(), Hostname: "cycler", TimeoutMs: 20000}
		if i == 0 {
			req.SetupKey = key
		}
		if err := up(cl, req); err != nil {
			t.Fatalf("up #%d: %v", i, err)
		}
		if st := status(t, cl); st.State != "connected" || st.Ip == "" {
			t.Fatalf("after up #%d: state %q ip %q", i, st.State, st.Ip)
		}
		if _, err := cl.Down(context.Background(), &daemonpb.DownRequest{}); err != nil {
			t.Fatalf("down #%d: %v", i, err)
		}
		if st := status(t, cl); st.State != "down" {
			t.Fatalf("after down #%d: state %q", i, st.State)
		}
	}
	stop()
	if _, err := os.Stat(filepath.Join(dir, daemon.KeyFile)); err != nil {
		t.Fatalf("key must survive down: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, daemon.SocketFile)); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

func TestUpBadInputs(t *testing.T) {
	srv, _ := startServer(t)
	defer srv.Stop()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + closed.Addr().String()
	closed.Close()
	cases := []struct {
		name string
		req  *daemonpb.UpRequest
		want string
	}{
		{"wrong setup key", &daemonpb.UpRequest{ManagementUrl: srv.PublicURL(), SetupKey: "not-a-key"}, "setup key"},
		{"unreachable management", &daemonpb.UpRequest{ManagementUrl: deadURL, SetupKey: "k", TimeoutMs: 1500}, "unreachable"},
		{"malformed URL", &daemonpb.UpRequest{ManagementUrl: "vpn.example.net:80", SetupKey: "k"}, "no scheme"},
		{"bad scheme", &daemonpb.UpRequest{ManagementUrl: "ftp://x:1", SetupKey: "k"}, "scheme"},
		{"no key first time", &daemonpb.UpRequest{ManagementUrl: srv.PublicURL()}, "setup key is needed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, cl, stop := startDaemon(t, shortDir(t))
			defer stop()
			err := up(cl, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if st := status(t, cl); st.State == "connected" || st.Ip != "" {
				t.Fatalf("state after failed up: %+v", st)
			}
		})
	}
	if n := len(srv.Management().Accounts()); n != 1 {
		t.Fatalf("accounts: %d", n)
	}
	snap, _ := srv.Management().Snapshot(srv.Management().Accounts()[0])
	if len(snap.Peers) != 0 {
		t.Fatalf("failed ups registered %d peers", len(snap.Peers))
	}
}

func TestValidateManagementURL(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"http://a:1", "http://a:1", true},
		{"https://vpn.example.net", "https://vpn.example.net", true},
		{" http://a:1/ ", "http://a:1", true},
		{"", "", false},
		{"a:1", "", false},
		{"http://", "", false},
		{"http://a:1/path", "", false},
		{"http://u:p@a:1", "", false},
		{"grpc://a:1", "", false},
		{"http://a:1?x=1", "", false},
	} {
		got, err := daemon.ValidateManagementURL(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("%q: got %q, %v", tc.in, got, err)
		}
	}
}

func TestJournalReplay(t *testing.T) {
	dir := t.TempDir()
	j := daemon.OpenJournal(filepath.Join(dir, "j"))
	for _, n := range []string{"a", "b", "c"} {
		if err := j.Record(daemon.Entry{Kind: "x", Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	// A torn write at the end is ignored.
	f, _ := os.OpenFile(filepath.Join(dir, "j"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"kind":"x","na`)
	f.Close()
	var order []string
	failB := true
	undo := map[string]daemon.Undoer{"x": func(e daemon.Entry) error {
		if e.Name == "b" && failB {
			return os.ErrPermission
		}
		order = append(order, e.Name)
		return nil
	}}
	n, err := j.Replay(undo)
	if n != 2 || err == nil || strings.Join(order, "") != "ca" {
		t.Fatalf("first replay: n=%d err=%v order=%v", n, err, order)
	}
	failB = false
	order = nil
	if n, err := j.Replay(undo); n != 1 || err != nil || strings.Join(order, "") != "b" {
		t.Fatalf("second replay: n=%d err=%v order=%v", n, err, order)
	}
	if es, _ := j.Entries(); len(es) != 0 {
		t.Fatalf("entries left: %v", es)
	}
}
