package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestExitStatuses runs the real binary: every misuse of the command line
// exits 2 with a message naming the problem, a failure while running
// exits 1, and --version prints the stamped version and commit.
func TestExitStatuses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin := filepath.Join(t.TempDir(), "petrel-server")
	build := exec.Command("go", "build", "-buildvcs=false", "-o", bin,
		"-ldflags", "-X main.version=9.8.7 -X main.commit=abc1234", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--version"}, 0, "petrel-server 9.8.7 (commit abc1234, go"},
		{[]string{"completion", "zsh"}, 0, "zsh completion"},
		{[]string{}, 2, "petrel-server needs a command"},
		{[]string{"bogus"}, 2, `unknown command "bogus" for "petrel-server"`},
		{[]string{"--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"groups"}, 2, "petrel-server groups needs a command"},
		{[]string{"groups", "delete"}, 2, "requires at least 1 arg(s)"},
		{[]string{"groups", "list", "extra"}, 2, `unknown command "extra"`},
		{[]string{"run", "extra"}, 2, `unknown command "extra"`},
		{[]string{"run", "--max-conns-per-source", "many"}, 2, `invalid argument "many"`},
		{[]string{"run", "--listen", "127.0.0.1:0"}, 2, "--data-dir is required"},
		{[]string{"completion", "tcsh"}, 2, `unknown command "tcsh"`},
		{[]string{"admin-token", "create", "--data-dir", dir}, 1, "no database at"},
	} {
		cmd := exec.Command(bin, tc.args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(out.String(), tc.msg) {
			t.Errorf("petrel-server %q: exit %d, want %d with %q; output:\n%s", tc.args, code, tc.code, tc.msg, out.String())
		}
		if len(tc.args) > 0 && tc.args[0] == "--version" && !regexp.MustCompile(`^petrel-server 9\.8\.7 \(commit abc1234, go\S+\)\n$`).MatchString(out.String()) {
			t.Errorf("--version: %q", out.String())
		}
	}
}
