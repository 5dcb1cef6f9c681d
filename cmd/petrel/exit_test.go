package main

import (
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestExitStatuses runs the real binary: every misuse of the command line
// exits 2 with a message naming the problem, a failure while running
// exits 1.
func TestExitStatuses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--version"}, 0, "petrel dev (commit "},
		{[]string{"completion", "bash"}, 0, "bash completion"},
		{[]string{}, 2, "petrel needs a command"},
		{[]string{"bogus"}, 2, `unknown command "bogus" for "petrel"`},
		{[]string{"stauts"}, 2, "did you mean status?"},
		{[]string{"--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"ping"}, 2, "accepts 1 arg(s), received 0"},
		{[]string{"ping", "a", "b"}, 2, "received 2"},
		{[]string{"ping", "-c", "x", "peer"}, 2, `invalid argument "x"`},
		{[]string{"status", "extra"}, 2, `unknown command "extra"`},
		{[]string{"routes", "extra"}, 2, `unknown command "extra"`},
		{[]string{"exit-node"}, 2, "petrel exit-node needs a command"},
		{[]string{"exit-node", "bogus"}, 2, `unknown command "bogus" for "petrel exit-node"`},
		{[]string{"exit-node", "use"}, 2, "accepts 1 arg(s)"},
		{[]string{"dns"}, 2, "petrel dns needs a command"},
		{[]string{"dns", "query"}, 2, "accepts between 1 and 2 arg(s)"},
		{[]string{"completion", "tcsh"}, 2, `unknown command "tcsh"`},
		{[]string{"status", "--log-level", "loud"}, 2, "--log-level"},
		{[]string{"ping", "peer", "--socket", sock}, 1, "no petrel daemon"},
		{[]string{"routes", "--socket", sock}, 1, "no petrel daemon"},
	} {
		out, code := run(t, bin, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.msg) {
			t.Errorf("petrel %q: exit %d, want %d with %q; output:\n%s", tc.args, code, tc.code, tc.msg, out)
		}
	}
}

// TestVersion: --version prints the version stamped with -ldflags -X and
// the commit, stamped or recorded by the toolchain.
func TestVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent binary")
	}
	bin := filepath.Join(t.TempDir(), "petrel")
	build := exec.Command("go", "build", "-buildvcs=false", "-o", bin,
		"-ldflags", "-X main.version=9.8.7 -X main.commit=abc1234 -X main.date=2027-01-02", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, code := run(t, bin, "--version")
	if want := regexp.MustCompile(`^petrel 9\.8\.7 \(commit abc1234, built 2027-01-02, go[0-9.]+\S*\)\n$`); code != 0 || !want.MatchString(out) {
		t.Fatalf("--version: exit %d, %q", code, out)
	}
}

// TestDaemonNotResponding: a socket that accepts and drops connections
// gives a sentence, not gRPC's text, and exit status 1; --log-level debug
// adds the raw error.
func TestDaemonNotResponding(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	sock := filepath.Join(stateDir(t), "mute.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	out, code := run(t, bin, "routes", "--socket", sock)
	if code != 1 || !strings.Contains(out, "the petrel daemon is not responding") || strings.Contains(out, "rpc error") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	out, code = run(t, bin, "routes", "--socket", sock, "--log-level", "debug")
	if code != 1 || !strings.Contains(out, "raw error: rpc error: code = Unavailable") {
		t.Fatalf("--log-level debug: exit %d, output:\n%s", code, out)
	}
}
