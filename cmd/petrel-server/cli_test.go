package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"petrel/client/mgmt"
	"petrel/internal/keys"
	"petrel/proto/managementpb"
	"petrel/server"
)

// os/signal's loop, started by run's NotifyContext, lives for the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("os/signal.signal_recv"))
}

const deadline = 30 * time.Second

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is `petrel-server run` executing in-process.
type running struct {
	addr   string // the bound TCP address, from the banner
	banner string
	cancel context.CancelFunc
	done   chan error

	once sync.Once
	err  error
}

// stop delivers what SIGINT would (context cancellation) and returns
// run's result. Idempotent.
func (r *running) stop() error {
	r.once.Do(func() {
		r.cancel()
		r.err = <-r.done
	})
	return r.err
}

// runServer starts `petrel-server run` with the test defaults plus args
// and waits for its banner. It is stopped at cleanup.
func runServer(t *testing.T, dir string, args ...string) *running {
	t.Helper()
	var out syncBuffer
	cmd := newRootCmd(&out, io.Discard)
	cmd.SetArgs(append([]string{"run", "--data-dir", dir, "--listen", "127.0.0.1:0", "--stun-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-level", "warn"}, args...))
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() { _ = r.stop() })
	end := time.Now().Add(deadline)
	for !strings.Contains(out.String(), "admin token:") && !strings.Contains(out.String(), "relay:") {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("run ended before its banner: %v", err)
		default:
		}
		if time.Now().After(end) {
			t.Fatal("no banner")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, "complete banner", func() bool { return strings.HasSuffix(out.String(), "\n") })
	r.banner = out.String()
	first := strings.SplitN(r.banner, "\n", 2)[0]
	r.addr = strings.Fields(strings.TrimPrefix(first, "petrel-server listening on "))[0]
	return r
}

// cli runs petrel-server with args in-process and returns stdout.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newRootCmd(&out, &errb)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunServesEverythingOnOnePort(t *testing.T) {
	dir := t.TempDir()
	srv := runServer(t, dir)
	base := "http://" + srv.addr

	// The admin token file is private.
	tokenFile := filepath.Join(dir, server.AdminTokenFile)
	fi, err := os.Stat(tokenFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v %v", fi, err)
	}
	token, _ := os.ReadFile(tokenFile)

	for _, want := range []string{"(components: management,signal,relay,stun)", "management (gRPC): " + base, base + "/api",
		"signal (gRPC):     " + base, "relay:             rel://" + srv.addr + " (WebSocket " + base + "/relay)",
		"relays advertised: rel://" + srv.addr, "STUN:              stun:127.0.0.1:", "admin token:       " + tokenFile} {
		if !strings.Contains(srv.banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, srv.banner)
		}
	}

	// HTTP/1.1: health and REST.
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 1 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	// CLI: create a setup key (plain and JSON).
	out, err := cli(t, "setup-key", "create", "--server", base, "--token-file", tokenFile, "--name", "ci", "--reusable", "--uses", "5", "--expires", "24h")
	if err != nil || !strings.HasPrefix(strings.TrimSpace(out), "psk_") {
		t.Fatalf("setup-key create: %q %v", out, err)
	}
	setupKey := strings.TrimSpace(out)
	out, err = cli(t, "setup-key", "create", "--server", base, "--token-file", tokenFile, "--json", "--group", "All", "--ephemeral")
	var created map[string]any
	if err != nil || json.Unmarshal([]byte(out), &created) != nil || created["key"] == "" || created["ephemeral"] != true {
		t.Fatalf("setup-key create --json: %q %v", out, err)
	}

	// gRPC on the same port: register a peer with the CLI-made key.
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	mc, err := mgmt.Dial(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	priv, _ := keys.NewPrivate()
	login, err := mc.Login(ctx, priv, &managementpb.LoginRequest{SetupKey: setupKey, Hostname: "agent-one"})
	if err != nil {
		t.Fatalf("login over gRPC: %v", err)
	}
	// Signal, relay and STUN on the served ports are covered by package
	// server's tests; here the banner's URLs must be what agents are told.
	if sc := login.GetServerConfig(); sc.GetSignalUrl() != base || strings.Join(sc.GetRelay().GetUrls(), " ") != "rel://"+srv.addr ||
		len(sc.GetStunUrls()) != 2 || !strings.Contains(srv.banner, sc.GetStunUrls()[0]) {
		t.Fatalf("server config: %v", sc)
	}

	// CLI: peers list.
	out, err = cli(t, "peers", "list", "--server", base, "--token-file", tokenFile)
	if err != nil || !strings.Contains(out, "agent-one") || !strings.Contains(out, login.GetPeerConfig().GetFqdn()) {
		t.Fatalf("peers list: %q %v", out, err)
	}
	out, err = cli(t, "peers", "list", "--server", base, "--token-file", tokenFile, "--json")
	var peers []peerJSON
	if err != nil || json.Unmarshal([]byte(out), &peers) != nil || len(peers) != 1 || peers[0].Name != "agent-one" {
		t.Fatalf("peers list --json: %q %v", out, err)
	}

	// While the agent streams, the table says connected; run then stops on
	// SIGINT without waiting for the stream.
	syncDone := make(chan error, 1)
	go func() {
		syncDone <- mc.Sync(ctx, priv, &managementpb.SyncRequest{}, func(*managementpb.SyncResponse) error { return nil })
	}()
	waitFor(t, "STATUS connected in peers list", func() bool {
		out, err := cli(t, "peers", "list", "--server", base, "--token-file", tokenFile)
		return err == nil && strings.Contains(out, " connected ")
	})

	// Restart on the same data dir: same token, same peer.
	if err := srv.stop(); err != nil {
		t.Fatalf("run after SIGINT: %v", err)
	}
	if err := <-syncDone; err == nil {
		t.Fatal("sync stream survived the server")
	}
	srv2 := runServer(t, dir)
	token2, _ := os.ReadFile(tokenFile)
	if !bytes.Equal(token, token2) {
		t.Fatal("admin token file changed on restart")
	}
	out, err = cli(t, "peers", "list", "--server", "http://"+srv2.addr, "--token-file", tokenFile, "--json")
	if err != nil || !strings.Contains(out, "agent-one") {
		t.Fatalf("peers list after restart: %q %v", out, err)
	}
	// (That the server key and logins survive is tested in package server.)
}

func TestRunComponentsAlone(t *testing.T) {
	dir := t.TempDir()
	srv := runServer(t, dir, "--components", "relay", "--relay-instance-url", "rel://eu-1.relay.example.net:8080")
	if !strings.Contains(srv.banner, "(components: relay)") || !strings.Contains(srv.banner, "relay:             rel://eu-1.relay.example.net:8080") ||
		strings.Contains(srv.banner, "admin token") || strings.Contains(srv.banner, "STUN") {
		t.Fatalf("banner:\n%s", srv.banner)
	}
	resp, err := http.Get("http://" + srv.addr + "/api/peers")
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("relay alone serves /api: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := os.Stat(filepath.Join(dir, "petrel.db")); !os.IsNotExist(err) {
		t.Fatalf("relay alone opened a store: %v", err)
	}
}

func TestAdminTokenCreate(t *testing.T) {
	dir := t.TempDir()
	srv := runServer(t, dir)
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, server.AdminTokenFile)
	if err := os.Remove(tokenFile); err != nil {
		t.Fatal(err)
	}

	// Printed on stdout.
	out, err := cli(t, "admin-token", "create", "--data-dir", dir, "--name", "ops")
	if err != nil || !strings.HasPrefix(out, "ptok_") {
		t.Fatalf("admin-token create: %q %v", out, err)
	}
	// Written to a private file.
	newFile := filepath.Join(t.TempDir(), "token")
	if out, err := cli(t, "admin-token", "create", "--data-dir", dir, "--out", newFile); err != nil || out != "" {
		t.Fatalf("admin-token create --out: %q %v", out, err)
	}
	if fi, err := os.Stat(newFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}

	srv2 := runServer(t, dir)
	base := "http://" + srv2.addr
	printed := filepath.Join(t.TempDir(), "printed")
	if err := os.WriteFile(printed, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{newFile, printed} {
		if _, err := cli(t, "peers", "list", "--server", base, "--token-file", f); err != nil {
			t.Fatalf("recovered token %s: %v", filepath.Base(f), err)
		}
	}
}

func TestCLIErrors(t *testing.T) {
	dir := t.TempDir()
	srv := runServer(t, dir)
	base := "http://" + srv.addr
	tokenFile := filepath.Join(dir, server.AdminTokenFile)
	badToken := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(badToken, []byte("ptok_nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A port nothing listens on.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		name  string
		args  []string
		msg   string
		usage bool
	}{
		{"bad token", []string{"peers", "list", "--server", base, "--token-file", badToken}, "admin token rejected", false},
		{"unreachable", []string{"peers", "list", "--server", dead, "--token-file", tokenFile}, "server unreachable", false},
		{"no token file flag", []string{"peers", "list", "--server", base}, "--token-file is required", true},
		{"missing token file", []string{"peers", "list", "--server", base, "--token-file", filepath.Join(dir, "nope")}, "read token file", false},
		{"bad server url", []string{"peers", "list", "--server", "ftp://x", "--token-file", tokenFile}, "--server", true},
		{"bad expires", []string{"setup-key", "create", "--server", base, "--token-file", tokenFile, "--expires", "soon"}, "--expires", true},
		{"uses without reusable", []string{"setup-key", "create", "--server", base, "--token-file", tokenFile, "--uses", "3"}, "needs --reusable", true},
		{"unknown group", []string{"setup-key", "create", "--server", base, "--token-file", tokenFile, "--group", "ghost"}, `unknown group "ghost"`, false},
		{"unknown flag", []string{"peers", "list", "--colour"}, "unknown flag", true},
		{"run without data dir", []string{"run", "--listen", "127.0.0.1:0"}, "--data-dir is required", true},
		{"run bad component", []string{"run", "--data-dir", dir, "--components", "management,dns"}, `unknown component "dns"`, true},
		{"run bad listen", []string{"run", "--data-dir", dir, "--listen", "8080"}, "--listen", true},
		{"run bad relay url", []string{"run", "--data-dir", dir, "--relay-url", "http://x"}, "--relay-url", true},
		{"run bad log level", []string{"run", "--data-dir", dir, "--log-level", "loud"}, "--log-level", true},
		{"run bad max conns per source", []string{"run", "--data-dir", dir, "--max-conns-per-source", "0"}, "--max-conns-per-source", true},
		{"run every problem", []string{"run", "--listen", "x", "--components", "dns"}, "--data-dir is required", true},
		{"run signal key file with management", []string{"run", "--data-dir", dir, "--signal-key-file", "k"}, "--signal-key-file", true},
		{"run port in use", []string{"run", "--data-dir", t.TempDir(), "--listen", srv.addr, "--stun-listen", "127.0.0.1:0"}, "listen on", false},
		{"admin-token without data dir", []string{"admin-token", "create"}, "--data-dir is required", true},
		{"admin-token wrong data dir", []string{"admin-token", "create", "--data-dir", t.TempDir()}, "no database at", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cli(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want error containing %q", err, tc.msg)
			}
			var ue usageError
			if errors.As(err, &ue) != tc.usage {
				t.Fatalf("usage error = %v, want %v (%v)", !tc.usage, tc.usage, err)
			}
			if exitCode(err) == 0 {
				t.Fatal("exit code 0")
			}
		})
	}
}

// Every flag problem is reported at once, not one per attempt.
func TestRunReportsEveryProblem(t *testing.T) {
	_, err := cli(t, "run", "--listen", "x", "--components", "dns", "--relay-url", "http://y")
	for _, want := range []string{"--data-dir is required", "--listen", `unknown component "dns"`, "--relay-url"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
