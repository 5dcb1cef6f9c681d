package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runIn runs the binary in dir with extra environment variables.
func runIn(t *testing.T, bin, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), 0
}

// The setup key from a file or the environment (no warning), from the
// command line (a warning: ps shows it), never both; a relative state dir
// works and a pre-existing 0777 one is tightened to 0700.
func TestCLISetupKeySources(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	srv, key := startControlPlane(t)
	base := stateDir(t)
	keyFile := filepath.Join(base, "setup.key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const warning = "visible to other users"
	login := func(name string, env []string, args ...string) (string, int) {
		if err := os.Mkdir(filepath.Join(base, name), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(base, name), 0o777); err != nil {
			t.Fatal(err)
		}
		a := append([]string{"login", "--state-dir", name, "--management-url", srv.PublicURL(), "--hostname", name}, args...)
		return runIn(t, bin, base, env, a...)
	}
	out, code := login("fromfile", nil, "--setup-key-file", keyFile)
	if code != 0 || !strings.Contains(out, "registered as fromfile") || strings.Contains(out, warning) {
		t.Fatalf("--setup-key-file with a relative state dir: exit %d\n%s", code, out)
	}
	fi, err := os.Stat(filepath.Join(base, "fromfile"))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode after login: %v %v", fi.Mode().Perm(), err)
	}
	out, code = login("fromenv", []string{SetupKeyEnv + "=" + key})
	if code != 0 || !strings.Contains(out, "registered as fromenv") || strings.Contains(out, warning) {
		t.Fatalf("%s: exit %d\n%s", SetupKeyEnv, code, out)
	}
	out, code = login("fromflag", nil, "--setup-key", key)
	if code != 0 || !strings.Contains(out, warning) {
		t.Fatalf("--setup-key: exit %d, want a warning\n%s", code, out)
	}
	out, code = login("both", nil, "--setup-key", key, "--setup-key-file", keyFile)
	if code != 2 || !strings.Contains(out, "not both") {
		t.Fatalf("both: exit %d\n%s", code, out)
	}
	empty := filepath.Join(base, "empty.key")
	os.WriteFile(empty, []byte("\n"), 0o600)
	out, code = login("emptyfile", nil, "--setup-key-file", empty)
	if code != 2 || !strings.Contains(out, "one line") {
		t.Fatalf("empty key file: exit %d\n%s", code, out)
	}
	snap, _ := srv.Management().Snapshot(srv.Management().Accounts()[0])
	if len(snap.Peers) != 3 {
		t.Fatalf("%d peers registered, want 3", len(snap.Peers))
	}
}
