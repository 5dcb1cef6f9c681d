package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"petrel/client/service"
	"petrel/internal/tlstest"
)

// runServiceCmd runs the agent binary in dir and returns its output and exit code.
func runServiceCmd(t *testing.T, dir, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return string(out), 0
}

func unitExecStart(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart="); ok {
			return v
		}
	}
	t.Fatalf("no ExecStart in %s", path)
	return ""
}

// TestServiceInstallCLI drives `petrel service install|uninstall
// --no-start` against a temporary unit directory: the unit runs this
// binary with the state directory, log flags and checked daemon flags; a
// second install changes nothing; bad flags change nothing.
func TestServiceInstallCLI(t *testing.T) {
	bin := buildAgent(t)
	work, units := t.TempDir(), t.TempDir()
	state := filepath.Join(work, "state")
	unit := filepath.Join(units, service.UnitName)
	tlstest.NewCA(t, "service test CA").WriteCA(t, work)

	base := []string{"--state-dir", "state", "--log-format", "json", "service", "install", "--unit-dir", units, "--no-start"}
	out, code := runServiceCmd(t, work, bin, append(base, "--", "--netstack", "--socks5", "127.0.0.1:1080", "--ca-file", "ca.pem")...)
	if code != 0 || !strings.Contains(out, "wrote "+unit) || !strings.Contains(out, "not started (--no-start)") {
		t.Fatalf("install: exit %d\n%s", code, out)
	}
	want := bin + " daemon --state-dir " + state + " --log-format=json --ca-file=" + filepath.Join(work, "ca.pem") +
		" --netstack --socks5=127.0.0.1:1080"
	if got := unitExecStart(t, unit); got != want {
		t.Errorf("ExecStart=%s\nwant       %s", got, want)
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir outside /var/lib not created 0700: %v %v", fi, err)
	}
	before, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	out, code = runServiceCmd(t, work, bin, append(base, "--", "--netstack", "--socks5", "127.0.0.1:1080", "--ca-file", "ca.pem")...)
	if code != 0 || !strings.Contains(out, "is up to date") {
		t.Fatalf("re-install: exit %d\n%s", code, out)
	}

	for _, bad := range [][]string{
		append(base, "--", "--bogus"),
		append(base, "--", "--mtu", "x"),
		append(base, "--", "--netstack", "extra"),
		append(base, "--", "--state-dir", "/elsewhere"),
		append(base, "--", "--ca-file", "missing.pem"),
		append(base, "stray"),
		append([]string{"--socket", "/tmp/x.sock"}, base...),
	} {
		out, code := runServiceCmd(t, work, bin, bad...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", bad, code, out)
		}
	}
	if after, err := os.ReadFile(unit); err != nil || string(after) != string(before) {
		t.Fatalf("a refused install changed the unit: %v\n%s", err, after)
	}

	out, code = runServiceCmd(t, work, bin, "--state-dir", "state", "service", "uninstall", "--unit-dir", units, "--no-start")
	if code != 0 || !strings.Contains(out, "removed "+unit) || !strings.Contains(out, "the state directory "+state+" (key, registration) is left in place") {
		t.Fatalf("uninstall: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(unit); !os.IsNotExist(err) {
		t.Fatalf("unit still there: %v", err)
	}
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("uninstall touched the state dir: %v", err)
	}
	out, code = runServiceCmd(t, work, bin, "service", "uninstall", "--unit-dir", units, "--no-start")
	if code != 0 || !strings.Contains(out, "nothing to uninstall") {
		t.Fatalf("second uninstall: exit %d\n%s", code, out)
	}
}
