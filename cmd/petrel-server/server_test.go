package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pstun "github.com/pion/stun/v3"
	"go.uber.org/goleak"

	"petrel/client/mgmt"
	"petrel/internal/keys"
	"petrel/proto/managementpb"
	relayclient "petrel/relay/client"
	signalclient "petrel/signal/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const deadline = 30 * time.Second

func testConfig(t *testing.T, dir string) *runConfig {
	t.Helper()
	f := runFlags{
		dataDir: dir, listen: "127.0.0.1:0", stunListen: "127.0.0.1:0", store: "sqlite",
		components: "management,signal,relay,stun", logLevel: "warn",
	}
	cfg, err := f.config()
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func start(t *testing.T, cfg *runConfig) *server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := startServer(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv
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
	cfg := testConfig(t, dir)
	srv := start(t, cfg)
	base := "http://" + srv.Addr().String()

	// The admin token file is private.
	tokenFile := filepath.Join(dir, adminTokenFile)
	fi, err := os.Stat(tokenFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v %v", fi, err)
	}
	token, _ := os.ReadFile(tokenFile)

	var banner bytes.Buffer
	srv.printBanner(&banner)
	for _, want := range []string{base + "/api", "rel://" + srv.Addr().String(), "stun:127.0.0.1:", tokenFile} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, banner.String())
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

	// h2c gRPC on the same port: register a peer through management.
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
	sc := login.GetServerConfig()
	if sc.GetSignalUrl() != base || len(sc.GetStunUrls()) != 1 || len(sc.GetRelay().GetUrls()) != 1 || sc.GetRelay().GetToken() == "" {
		t.Fatalf("server config: %v", sc)
	}

	// Signal registers over the same port.
	sig := signalclient.New(signalclient.Config{Target: srv.Addr().String(), Key: priv})
	if err := sig.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "signal registration", sig.Connected)
	sig.Stop()

	// The relay WebSocket (HTTP/1.1 upgrade) on the same port, with the
	// token management minted.
	rc := relayclient.New(relayclient.Config{URLs: sc.GetRelay().GetUrls(), Key: priv.Public(), Token: func() string { return sc.GetRelay().GetToken() }})
	if err := rc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "relay home connection", rc.Connected)
	if rc.HomeURL() != "rel://"+srv.Addr().String() {
		t.Errorf("relay home %q", rc.HomeURL())
	}
	rc.Stop()

	// STUN answers on UDP.
	stunBinding(t, srv.stun.Addr().String())

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

	// A live Sync stream shows as connected in the REST API.
	syncCtx, syncCancel := context.WithCancel(ctx)
	defer syncCancel()
	syncDone := make(chan error, 1)
	go func() {
		syncDone <- mc.Sync(syncCtx, priv, &managementpb.SyncRequest{}, func(*managementpb.SyncResponse) error { return nil })
	}()
	waitFor(t, "peer connected in REST", func() bool {
		out, err := cli(t, "peers", "list", "--server", base, "--token-file", tokenFile, "--json")
		return err == nil && json.Unmarshal([]byte(out), &peers) == nil && len(peers) == 1 && peers[0].Connected
	})

	// Restart on the same data dir: same token, same peer. Stop ends the
	// live Sync stream rather than waiting for it.
	srv.Stop()
	if err := <-syncDone; err == nil {
		t.Fatal("sync stream survived the server")
	}
	cfg2 := testConfig(t, dir)
	srv2 := start(t, cfg2)
	token2, _ := os.ReadFile(tokenFile)
	if !bytes.Equal(token, token2) {
		t.Fatal("admin token file changed on restart")
	}
	out, err = cli(t, "peers", "list", "--server", "http://"+srv2.Addr().String(), "--token-file", tokenFile, "--json")
	if err != nil || !strings.Contains(out, "agent-one") {
		t.Fatalf("peers list after restart: %q %v", out, err)
	}
	// The server key survived: the old login still re-authenticates.
	mc2, err := mgmt.Dial(ctx, "http://"+srv2.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer mc2.Close()
	if _, err := mc2.Login(ctx, priv, &managementpb.LoginRequest{}); err != nil {
		t.Fatalf("re-login after restart: %v", err)
	}
}

func stunBinding(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest)
	buf := make([]byte, 1500)
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		if _, err := conn.Write(req.Raw); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			continue
		}
		res := &pstun.Message{Raw: buf[:n]}
		var xor pstun.XORMappedAddress
		if res.Decode() == nil && xor.GetFrom(res) == nil {
			return
		}
	}
	t.Fatal("no STUN binding response")
}

func TestRelayOnly(t *testing.T) {
	dir := t.TempDir()
	f := runFlags{dataDir: dir, listen: "127.0.0.1:0", components: "relay", logLevel: "warn",
		relayInstanceURL: "rel://eu-1.relay.example.net:8080"}
	cfg, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	srv := start(t, cfg)
	base := "http://" + srv.Addr().String()
	for path, want := range map[string]int{"/healthz": 200, "/api/peers": 404} {
		resp, err := http.Get(base + path)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("%s: %v %v, want %d", path, resp, err, want)
		}
		resp.Body.Close()
	}
	if _, err := os.Stat(filepath.Join(dir, "petrel.db")); !os.IsNotExist(err) {
		t.Fatalf("relay-only opened a store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, relaySecretFile)); err != nil {
		t.Fatalf("relay secret not created: %v", err)
	}
	if srv.ep.RelayInstanceURL != "rel://eu-1.relay.example.net:8080" {
		t.Fatalf("instance url %q", srv.ep.RelayInstanceURL)
	}
}

func TestCLIErrors(t *testing.T) {
	dir := t.TempDir()
	srv := start(t, testConfig(t, dir))
	base := "http://" + srv.Addr().String()
	tokenFile := filepath.Join(dir, adminTokenFile)
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

func TestDeriveEndpoints(t *testing.T) {
	host := func() (string, error) { return "box.example", nil }
	tcp := &net.TCPAddr{IP: net.IPv4zero, Port: 8080}
	udp := &net.UDPAddr{IP: net.IPv4zero, Port: 3478}
	for _, tc := range []struct {
		name             string
		flags            runFlags
		tcp              net.Addr
		public, instance string
		relays, stuns    []string
	}{
		{"unspecified listen uses hostname", runFlags{}, tcp, "http://box.example:8080", "rel://box.example:8080", []string{"rel://box.example:8080"}, []string{"stun:box.example:3478"}},
		{"listen host", runFlags{}, &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 9000}, "http://10.0.0.1:9000", "rel://10.0.0.1:9000", []string{"rel://10.0.0.1:9000"}, []string{"stun:10.0.0.1:3478"}},
		{"public url", runFlags{publicURL: "https://mgmt.example.net"}, tcp, "https://mgmt.example.net", "rels://mgmt.example.net:443", []string{"rels://mgmt.example.net:443"}, []string{"stun:mgmt.example.net:3478"}},
		{"explicit relays", runFlags{publicURL: "http://m.example:80", relayURLs: []string{"rel://relay.example.net:8080"}, relayInstanceURL: "rel://eu-1.relay.example.net:8080", stunURLs: []string{"stun:s.example:3478"}}, tcp,
			"http://m.example:80", "rel://eu-1.relay.example.net:8080", []string{"rel://relay.example.net:8080"}, []string{"stun:s.example:3478"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.flags
			f.dataDir, f.listen, f.stunListen, f.components, f.logLevel = t.TempDir(), ":8080", ":3478", "management,signal,relay,stun", "info"
			cfg, err := f.config()
			if err != nil {
				t.Fatal(err)
			}
			ep, err := deriveEndpoints(cfg, tc.tcp, udp, host)
			if err != nil {
				t.Fatal(err)
			}
			if ep.Public.String() != tc.public || ep.RelayInstanceURL != tc.instance ||
				strings.Join(ep.RelayURLs, " ") != strings.Join(tc.relays, " ") || strings.Join(ep.STUNURLs, " ") != strings.Join(tc.stuns, " ") {
				t.Fatalf("got %+v", ep)
			}
		})
	}
}
