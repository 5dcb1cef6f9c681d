package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"petrel/management"
	"petrel/management/model"
	"petrel/server"
)

// buildAgent compiles this command once per test binary.
func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "petrel")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build petrel: %v\n%s", err, out)
	}
	return bin
}

func startControlPlane(t *testing.T) (*server.Server, string) {
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
	t.Cleanup(srv.Stop)
	_, key, err := srv.Management().CreateSetupKey(ctx, srv.Management().Accounts()[0],
		management.SetupKeyInput{Name: "cli", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	return srv, key
}

func run(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), code
}

func stateDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "pc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// TestCLIUpStatusPingDown drives the real binary: up (background daemon),
// status --json (the stable contract), ping by DNS name, down.
func TestCLIUpStatusPingDown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	srv, key := startControlPlane(t)
	dirs := map[string]string{"one": stateDir(t), "two": stateDir(t)}
	for name, dir := range dirs {
		out, code := run(t, bin, "up", "--netstack", "--ice-loopback", "--state-dir", dir, "--hostname", name,
			"--management-url", srv.PublicURL(), "--setup-key", key, "--timeout", "30s")
		if code != 0 {
			t.Fatalf("up %s: exit %d\n%s", name, code, out)
		}
		if !strings.Contains(out, "[done") {
			t.Fatalf("up %s printed no progress:\n%s", name, out)
		}
		defer run(t, bin, "down", "--state-dir", dir)
	}
	// status --json keeps the contract's field names.
	var st map[string]any
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, code := run(t, bin, "status", "--json", "--state-dir", dirs["one"])
		if code != 0 {
			t.Fatalf("status: %d %s", code, out)
		}
		st = nil
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status --json is not JSON: %v\n%s", err, out)
		}
		peers, _ := st["peers"].([]any)
		if len(peers) == 1 && peers[0].(map[string]any)["status"] == "connected" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer never connected:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, k := range []string{"state", "management", "signal", "relay", "ip", "fqdn", "peers"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status --json lacks %q", k)
		}
	}
	if st["state"] != "connected" {
		t.Errorf("state = %v", st["state"])
	}
	p := st["peers"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "fqdn", "ip", "public_key", "status", "path", "relay_url", "local_candidate",
		"remote_candidate", "latency_ms", "last_handshake", "rx_bytes", "tx_bytes"} {
		if _, ok := p[k]; !ok {
			t.Errorf("peer status lacks %q", k)
		}
	}
	for _, k := range []string{"url", "connected"} {
		if _, ok := st["management"].(map[string]any)[k]; !ok {
			t.Errorf("management lacks %q", k)
		}
	}
	for _, k := range []string{"home_url", "connected"} {
		if _, ok := st["relay"].(map[string]any)[k]; !ok {
			t.Errorf("relay lacks %q", k)
		}
	}
	out, code := run(t, bin, "ping", "--state-dir", dirs["one"], "-c", "2", "two.petrel.internal")
	if code != 0 || !strings.Contains(out, "reply from") || !strings.Contains(out, "via ") {
		t.Fatalf("ping: exit %d\n%s", code, out)
	}
	out, code = run(t, bin, "status", "--state-dir", dirs["one"])
	if code != 0 || !strings.Contains(out, "two.petrel.internal") || !strings.Contains(out, "PATH") {
		t.Fatalf("status table: exit %d\n%s", code, out)
	}
	for _, k := range []string{"routes", "exit_node", "dns"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status --json lacks %q", k)
		}
	}
	checkNewCommands(t, bin, srv, dirs["one"])
	checkBundle(t, bin, srv, dirs["one"], key)
	out, code = run(t, bin, "down", "--state-dir", dirs["one"])
	if code != 0 {
		t.Fatalf("down: %d %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dirs["one"], "petrel.sock")); !os.IsNotExist(err) {
		t.Fatalf("socket left after down: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dirs["one"], "wg.key")); err != nil {
		t.Fatalf("key must survive down: %v", err)
	}
}

// TestCLIBadInputs: clear message, non-zero exit, nothing left behind.
func TestCLIBadInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	srv, _ := startControlPlane(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"malformed URL", []string{"--management-url", "not a url"}, "management URL"},
		{"wrong key", []string{"--management-url", srv.PublicURL(), "--setup-key", "bogus"}, "setup key"},
		{"unreachable", []string{"--management-url", "http://127.0.0.1:1", "--setup-key", "x", "--timeout", "2s"}, "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := stateDir(t)
			args := append([]string{"up", "--netstack", "--state-dir", dir}, tc.args...)
			out, code := run(t, bin, args...)
			if code == 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, output:\n%s\nwant mention of %q", code, out, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "petrel.sock")); !os.IsNotExist(err) {
				t.Fatalf("daemon socket left behind")
			}
			if out, _ := run(t, bin, "status", "--state-dir", dir); !strings.Contains(out, "no petrel daemon") {
				t.Fatalf("a daemon is still running:\n%s", out)
			}
		})
	}
}

// TestCLILogFlags: a bad --log-level or --log-format is a usage error
// before anything starts; --log-format json reaches the spawned daemon.
func TestCLILogFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	srv, _ := startControlPlane(t)
	dir := stateDir(t)
	for _, args := range [][]string{{"--log-level", "loud"}, {"--log-format", "xml"}} {
		out, code := run(t, bin, append([]string{"status", "--state-dir", dir}, args...)...)
		if code != 2 || !strings.Contains(out, args[0]) {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
	}
	out, code := run(t, bin, "up", "--netstack", "--state-dir", dir, "--log-format", "json",
		"--management-url", srv.PublicURL(), "--setup-key", "bogus")
	if code == 0 {
		t.Fatalf("up with a bad key succeeded:\n%s", out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
			t.Fatalf("daemon.log line is not a JSON record: %q", l)
		}
	}
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("the daemon logged nothing")
	}
}

// TestCLILoginThenUp: login registers without connecting; up then needs no key.
func TestCLILoginThenUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	srv, key := startControlPlane(t)
	dir := stateDir(t)
	out, code := run(t, bin, "login", "--state-dir", dir, "--management-url", srv.PublicURL(), "--setup-key", key,
		"--hostname", "solo")
	if code != 0 || !strings.Contains(out, "registered as solo.petrel.internal") {
		t.Fatalf("login: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "petrel.sock")); !os.IsNotExist(err) {
		t.Fatalf("login left a daemon running")
	}
	out, code = run(t, bin, "up", "--netstack", "--state-dir", dir, "--timeout", "30s")
	if code != 0 {
		t.Fatalf("up after login: exit %d\n%s", code, out)
	}
	defer run(t, bin, "down", "--state-dir", dir)
	out, _ = run(t, bin, "status", "--json", "--state-dir", dir)
	if !strings.Contains(out, `"fqdn": "solo.petrel.internal"`) {
		t.Fatalf("status after up:\n%s", out)
	}
	snap, _ := srv.Management().Snapshot(srv.Management().Accounts()[0])
	if len(snap.Peers) != 1 {
		t.Fatalf("login + up registered %d peers, want 1", len(snap.Peers))
	}
}

// checkNewCommands drives routes, exit-node, dns and debug trace against
// agent "one" once "two" offers an exit route.
func checkNewCommands(t *testing.T, bin string, srv *server.Server, dir string) {
	t.Helper()
	m := srv.Management()
	acct := m.Accounts()[0]
	snap, err := m.Snapshot(acct)
	if err != nil {
		t.Fatal(err)
	}
	var two, all string
	for id, p := range snap.Peers {
		if p.Name == "two" {
			two = id
		}
	}
	for id, g := range snap.Groups {
		if g.Name == "All" {
			all = id
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := m.Put(ctx, acct, &model.Route{Network: netip.MustParsePrefix("0.0.0.0/0"), Peer: two,
		Groups: []string{all}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := run(t, bin, "exit-node", "list", "--json", "--state-dir", dir)
		if strings.Contains(out, `"name": "two"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exit-node list never offered two:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, code := run(t, bin, "exit-node", "use", "nobody", "--state-dir", dir); code == 0 || !strings.Contains(out, "no such exit node") {
		t.Fatalf("exit-node use nobody: exit %d\n%s", code, out)
	}
	if out, code := run(t, bin, "exit-node", "use", "two", "--kill-switch", "--state-dir", dir); code != 0 ||
		!strings.Contains(out, "Exit node: two") || !strings.Contains(out, "kill switch") {
		t.Fatalf("exit-node use two: exit %d\n%s", code, out)
	}
	if out, _ := run(t, bin, "routes", "--state-dir", dir); !strings.Contains(out, "0.0.0.0/0") || !strings.Contains(out, "installed") {
		t.Fatalf("routes:\n%s", out)
	}
	if out, code := run(t, bin, "exit-node", "off", "--state-dir", dir); code != 0 || !strings.Contains(out, "none (off)") {
		t.Fatalf("exit-node off: exit %d\n%s", code, out)
	}
	if out, code := run(t, bin, "dns", "query", "two.petrel.internal", "--state-dir", dir); code != 0 ||
		!strings.Contains(out, "local-zone") {
		t.Fatalf("dns query: exit %d\n%s", code, out)
	}
	if out, code := run(t, bin, "dns", "query", "two.petrel.internal", "BOGUS", "--state-dir", dir); code == 0 ||
		!strings.Contains(out, "unknown record type") {
		t.Fatalf("dns query with a bad type: exit %d\n%s", code, out)
	}
	if out, code := run(t, bin, "dns", "status", "--state-dir", dir); code != 0 || !strings.Contains(out, "local-zone") {
		t.Fatalf("dns status: exit %d\n%s", code, out)
	}
	if out, code := run(t, bin, "debug", "trace", "self", "two", "tcp", "22", "--state-dir", dir); code != 0 ||
		!strings.Contains(out, "ALLOWED (out)") {
		t.Fatalf("debug trace: exit %d\n%s", code, out)
	}
	if out, code := run(t, bin, "debug", "trace", "self", "two", "sctp", "--state-dir", dir); code == 0 ||
		!strings.Contains(out, "protocol") {
		t.Fatalf("debug trace with a bad protocol: exit %d\n%s", code, out)
	}
}
