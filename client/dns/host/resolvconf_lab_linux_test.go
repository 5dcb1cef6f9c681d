//go:build lab

package host

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// labNetns creates network namespace name with /etc/netns/name/resolv.conf
// holding content, so `ip netns exec` bind-mounts it over /etc/resolv.conf.
// Returns the outside path of that file.
func labNetns(t *testing.T, name, content string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lab test needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	_, statErr := os.Stat("/etc/netns")
	hadNetnsDir := statErr == nil
	etc := filepath.Join("/etc/netns", name)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", name).Run()
		_ = os.RemoveAll(etc)
		if !hadNetnsDir {
			_ = os.Remove("/etc/netns") // only if empty
		}
	})
	conf := filepath.Join(etc, "resolv.conf")
	if err := os.WriteFile(conf, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	return conf
}

// labHelper runs this test binary as runHelper inside the namespace.
func labHelper(t *testing.T, netns, mode, state, journal string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", netns, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperStateEnv+"="+state,
		helperJournalEnv+"="+journal, helperNetnsEnv+"="+netns)
	cmd.Stderr = os.Stderr
	return cmd
}

// startHelper runs the "start" helper and waits until it has started.
func startHelper(t *testing.T, netns, state, journal string) *exec.Cmd {
	t.Helper()
	cmd := labHelper(t, netns, "start", state, journal)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if strings.TrimSpace(s) != "started" {
			t.Fatalf("helper said %q", s)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("helper did not start")
	}
	return cmd
}

func TestLabBindMountedResolvConf(t *testing.T) {
	name := fmt.Sprintf("petreldns%d", os.Getpid())
	conf := labNetns(t, name, origConf)
	state := t.TempDir()
	journal := filepath.Join(state, "journal")
	backup := filepath.Join(state, backupName)
	before, err := os.Stat(conf)
	if err != nil {
		t.Fatal(err)
	}

	// Clean run: ours is visible from outside, in the same inode (written
	// in place: rename over the bind mount is refused).
	cmd := startHelper(t, name, state, journal)
	got := mustRead(t, conf)
	if !isOurs([]byte(got), ourNS) || !strings.Contains(got, "nameserver 100.64.0.1\n") ||
		!strings.Contains(got, "search petrel.internal corp.example lab.example\n") {
		t.Fatalf("inside file from outside:\n%s", got)
	}
	if after, _ := os.Stat(conf); !os.SameFile(before, after) {
		t.Fatal("the lab file was replaced, not written in place")
	}
	if b := mustRead(t, backup); b != origConf {
		t.Fatalf("backup %q", b)
	}

	// A foreign in-place rewrite (seen through the bind mount) is repaired
	// by the poll watcher and adopted as the new original.
	const dhcp = "# dhclient\nnameserver 198.51.100.1\n"
	if err := os.WriteFile(conf, []byte(dhcp), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "repair through the bind mount", func() bool {
		b, _ := os.ReadFile(conf)
		return isOurs(b, ourNS) && mustRead(t, backup) == dhcp
	})

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper close: %v", err)
	}
	if got := mustRead(t, conf); got != dhcp {
		t.Fatalf("after close %q, want the latest foreign content", got)
	}
	mustNotExist(t, backup)

	// Crash: SIGKILL leaves ours; the journal alone restores byte for byte.
	if err := os.WriteFile(conf, []byte(origConf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = startHelper(t, name, state, journal)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !isOurs([]byte(mustRead(t, conf)), ourNS) {
		t.Fatal("precondition: ours left behind by the crash")
	}
	for i := 0; i < 2; i++ { // the second replay is a no-op
		if out, err := labHelperRun(t, name, state, journal); err != nil {
			t.Fatalf("undo %d: %v %s", i, err, out)
		}
		if got := mustRead(t, conf); got != origConf {
			t.Fatalf("undo %d: %q", i, got)
		}
		mustNotExist(t, backup)
	}
}

func labHelperRun(t *testing.T, netns, state, journal string) ([]byte, error) {
	cmd := labHelper(t, netns, "undo", state, journal)
	cmd.Stderr = nil
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.Bytes(), fmt.Errorf("exit %d", ee.ExitCode())
	}
	return out.Bytes(), err
}
