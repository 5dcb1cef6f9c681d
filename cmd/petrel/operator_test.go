package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"petrel/client/daemon"
)

// operatorChildEnv marks the child of TestOperatorStatusWithoutRoot that
// runs in private mount and network namespaces; its value is the group.
const operatorChildEnv = "PETREL_OPERATOR_CHILD"

// operatorUID is a uid no account uses, for the non-root caller.
const operatorUID = 64731

// TestOperatorStatusWithoutRoot: a root daemon in TUN mode serves
// /run/petrel/petrel.sock to the operator group; a member runs
// `petrel status` without sudo (found without --socket), is refused
// anything that changes the agent with a sentence saying to use sudo, and
// a non-member is told it is a permission problem, not "no daemon".
//
// The daemon runs in a child in private mount and network namespaces,
// with tmpfs over /run and /var/lib, so the system paths it uses are the
// child's own and it touches no host network state.
func TestOperatorStatusWithoutRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a root daemon, a mount namespace and a second user")
	}
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	if g := os.Getenv(operatorChildEnv); g != "" {
		operatorChecks(t, g)
		return
	}
	group := fmt.Sprintf("petrelop%d", os.Getpid()%100000)
	if out, err := exec.Command("groupadd", "--system", group).CombinedOutput(); err != nil {
		t.Fatalf("groupadd: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("groupdel", group).Run() })
	child := exec.Command("unshare", "--mount", "--propagation", "private", "--net",
		os.Args[0], "-test.run", "^TestOperatorStatusWithoutRoot$", "-test.count", "1", "-test.v")
	child.Env = append(os.Environ(), operatorChildEnv+"="+group)
	out, err := child.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil || !strings.Contains(string(out), "--- PASS: TestOperatorStatusWithoutRoot") {
		t.Fatalf("operator checks failed: %v", err)
	}
}

func operatorChecks(t *testing.T, group string) {
	for _, d := range []string{"/run", "/var/lib"} {
		if out, err := exec.Command("mount", "-t", "tmpfs", "tmpfs", d).CombinedOutput(); err != nil {
			t.Fatalf("mount tmpfs on %s: %v\n%s", d, err, out)
		}
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	// The binary where the other user may run it.
	binDir, err := os.MkdirTemp("", "petrel-op-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(binDir)
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "petrel")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build petrel: %v\n%s", err, out)
	}
	d := exec.Command(bin, "daemon", "--operator-group", group, "--dns-mode", "off")
	var dlog strings.Builder
	d.Stdout, d.Stderr = &dlog, &dlog
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = d.Process.Signal(syscall.SIGTERM)
		_ = d.Wait()
		t.Logf("daemon log:\n%s", dlog.String())
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(daemon.SystemSocket); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon never listened on %s", daemon.SystemSocket)
		}
		time.Sleep(100 * time.Millisecond)
	}
	checkMode(t, daemon.SystemRunDir, 0o750, gid)
	checkMode(t, daemon.SystemSocket, 0o660, gid)

	member := []uint32{uint32(gid)}
	// A member reads the status without sudo and without --socket.
	out, code := runAs(t, bin, member, "status")
	if code != 1 || !strings.Contains(out, "State:      needs-login") {
		t.Fatalf("member: status: exit %d\n%s", code, out)
	}
	out, code = runAs(t, bin, member, "status", "--json")
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.State != "needs-login" || code != 1 {
		t.Fatalf("member: status --json: exit %d, %v\n%s", code, err, out)
	}
	// ... and may not change anything.
	for _, args := range [][]string{
		{"down"},
		{"up", "--netstack", "--management-url", "http://127.0.0.1:1", "--setup-key", "k"},
		{"set", "--hostname", "x"},
	} {
		out, code := runAs(t, bin, member, args...)
		if code != 1 || !strings.Contains(out, "changing petrel needs root: run sudo petrel "+args[0]) {
			t.Errorf("member: %v: exit %d\n%s", args, code, out)
		}
	}
	// A stranger is told it is a permission problem.
	out, code = runAs(t, bin, nil, "status")
	if code != 1 || !strings.Contains(out, "permission denied on "+daemon.SystemSocket) ||
		!strings.Contains(out, "group") || strings.Contains(out, "no petrel daemon") {
		t.Fatalf("stranger: status: exit %d\n%s", code, out)
	}
	// Root may do everything: down stops the daemon.
	if out, code := run(t, bin, "down"); code != 0 || !strings.Contains(out, "already down") {
		t.Fatalf("root: down: exit %d\n%s", code, out)
	}
	if err := d.Wait(); err != nil {
		t.Fatalf("daemon after down: %v", err)
	}
}

// runAs runs the CLI as operatorUID with the given supplementary groups.
func runAs(t *testing.T, bin string, groups []uint32, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"HOME=/nonexistent", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: operatorUID, Gid: operatorUID, Groups: groups}}
	b, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return string(b), code
}

func checkMode(t *testing.T, path string, mode os.FileMode, gid int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != mode || st.Uid != 0 || int(st.Gid) != gid {
		t.Errorf("%s: mode %04o owner %d:%d, want %04o 0:%d", path, fi.Mode().Perm(), st.Uid, st.Gid, mode, gid)
	}
}
