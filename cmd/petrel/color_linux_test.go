package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"petrel/proto/daemonpb"
)

// openPTY returns a new pseudo-terminal's controlling and terminal ends.
func openPTY(t *testing.T) (ctl, tty *os.File) {
	t.Helper()
	ctl, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(ctl.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ctl.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	return ctl, tty
}

// runOnTTY runs bin with stdout on a pseudo-terminal and env added.
func runOnTTY(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	ctl, tty := openPTY(t)
	defer ctl.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = tty, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var out bytes.Buffer
	_, _ = io.Copy(&out, ctl) // ends with EIO once the child closed the terminal
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

// TestColorOnlyOnTerminal: colour on a terminal, none with NO_COLOR or
// TERM=dumb, and no escape at all into a pipe.
func TestColorOnlyOnTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	f := &fakeDaemon{status: twoPeers(), replies: []*daemonpb.PingReply{{Ip: "100.64.0.2", Seq: 1, RttMs: 0.25, Path: "p2p"}}}
	sock := f.serve(t)
	args := []string{"ping", "alpha", "-c", "1", "--socket", sock}
	if out := runOnTTY(t, bin, []string{"TERM=xterm", "NO_COLOR="}, args...); !strings.Contains(out, "via \x1b[32mp2p\x1b[0m") {
		t.Fatalf("no colour on a terminal: %q", out)
	}
	for _, env := range [][]string{{"TERM=xterm", "NO_COLOR=1"}, {"TERM=dumb", "NO_COLOR="}} {
		if out := runOnTTY(t, bin, env, args...); strings.ContainsRune(out, 0x1b) || !strings.Contains(out, "via p2p") {
			t.Fatalf("%v: %q", env, out)
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TERM=xterm", "NO_COLOR=")
	out, err := cmd.Output()
	if err != nil || strings.ContainsRune(string(out), 0x1b) || !strings.Contains(string(out), "via p2p") {
		t.Fatalf("into a pipe: %v %q", err, out)
	}
}
