package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestUpShowsRetriesWhileServerUnreachable: up against a server that does
// not answer says so on each failed attempt instead of waiting silently,
// then fails with the attempts counted.
func TestUpShowsRetriesWhileServerUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	dir := stateDir(t)
	t.Setenv("PETREL_SETUP_KEY", "psk_unreachableunreachable00")
	out, code := run(t, bin, "up", "--netstack", "--state-dir", dir, "--management-url", "http://127.0.0.1:1", "--timeout", "3s")
	defer run(t, bin, "down", "--state-dir", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"cannot reach management", "attempt 1 failed, retrying in", "unreachable after"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "rpc error:") {
		t.Fatalf("raw gRPC error text:\n%s", out)
	}
}

// TestUpJSONProgress: with --json every line up prints on stdout is one
// JSON object of the documented shape (errors stay on stderr).
func TestUpJSONProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	dir := stateDir(t)
	t.Setenv("PETREL_SETUP_KEY", "psk_unreachableunreachable00")
	cmd := exec.Command(bin, "up", "--json", "--netstack", "--state-dir", dir, "--management-url", "http://127.0.0.1:1", "--timeout", "2s")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	defer run(t, bin, "down", "--state-dir", dir)
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	for _, l := range lines {
		var p map[string]any
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		for _, k := range []string{"stage", "message", "management_connected", "signal_connected", "relay_connected", "peers_connected", "peers_total"} {
			if _, ok := p[k]; !ok {
				t.Fatalf("line %q lacks %q", l, k)
			}
		}
	}
	if !strings.Contains(stderr.String(), "unreachable") {
		t.Fatalf("stderr %q", stderr.String())
	}
}
