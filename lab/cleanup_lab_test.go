//go:build lab

package lab_test

import (
	"bufio"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"petrel/lab"
)

// startChild runs this test binary as a lab-building child and returns it
// with the prefix it printed.
func startChild(t *testing.T, mode string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PETREL_LAB_CHILD="+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "READY ") {
		t.Fatalf("child said %q, %v", line, err)
	}
	prefix := strings.TrimSpace(strings.TrimPrefix(line, "READY "))
	if got := prefixed(t, prefix); len(got) == 0 {
		t.Fatalf("child lab %s not visible", prefix)
	}
	return cmd, prefix
}

func TestInterruptedRunIsCleanedByCleanupStale(t *testing.T) {
	// A live lab of this process must survive CleanupStale.
	live := lab.NewT(t, lab.Options{})
	if _, err := live.AddHost("live"); err != nil {
		t.Fatal(err)
	}

	cmd, prefix := startChild(t, "kill")
	ns := prefix + "-c1"
	// A process outside the lab's tracking keeps the namespace busy, as a
	// daemon that outlived its test would.
	stray := exec.Command("ip", "netns", "exec", ns, "sleep", "600")
	stray.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stray.Process.Kill(); stray.Wait() })
	strayDone := make(chan struct{})
	go func() { stray.Wait(); close(strayDone) }()
	// Wait until it has entered the namespace (ip netns exec has run setns).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		if slices.Contains(strings.Fields(string(out)), strconv.Itoa(stray.Process.Pid)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stray process never appeared in %s", ns)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if got := prefixed(t, prefix); len(got) == 0 {
		t.Fatalf("nothing left after SIGKILL; the test proves nothing")
	}
	removed, err := lab.CleanupStale("", nil)
	if err != nil {
		t.Fatalf("CleanupStale: %v", err)
	}
	if got := prefixed(t, prefix); len(got) != 0 {
		t.Fatalf("left after CleanupStale: %v (removed %v)", got, removed)
	}
	if _, err := os.Stat(lab.DefaultJournalDir + "/" + prefix + ".json"); !os.IsNotExist(err) {
		t.Fatalf("journal of dead run still there: %v", err)
	}
	select {
	case <-strayDone:
	case <-time.After(20 * time.Second):
		t.Fatal("process inside the dead run's namespace survived CleanupStale")
	}
	if got := prefixed(t, live.Prefix()); len(got) == 0 {
		t.Fatalf("CleanupStale removed the live lab %s", live.Prefix())
	}
}

func TestSignalTearsDown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("lab test skipped: needs root")
	}
	cmd, prefix := startChild(t, "signal")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 143 {
		t.Fatalf("child exit: %v, want status 143 from the teardown handler", err)
	}
	if got := prefixed(t, prefix); len(got) != 0 {
		t.Fatalf("left after SIGTERM teardown: %v", got)
	}
}
