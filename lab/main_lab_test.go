//go:build lab

package lab_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"petrel/lab"
)

// labBin is the lab CLI built once for the helper subcommands; "" when the
// build failed (tests needing it fail with buildErr).
var labBin, buildErr = "", error(nil)

func TestMain(m *testing.M) {
	if mode := os.Getenv("PETREL_LAB_CHILD"); mode != "" {
		os.Exit(childMain(mode))
	}
	dir, err := os.MkdirTemp("", "petrel-lab-bin")
	if err == nil {
		bin := filepath.Join(dir, "lab")
		out, err := exec.Command("go", "build", "-o", bin, "./cmd/lab").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build lab CLI: %v: %s", err, out)
		} else {
			labBin = bin
		}
	} else {
		buildErr = err
	}
	code := lab.RunTests(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

func needBin(t *testing.T) string {
	t.Helper()
	if labBin == "" {
		t.Fatalf("lab CLI unavailable: %v", buildErr)
	}
	return labBin
}

// childMain builds a small lab, starts a long-running process in it, prints
// "READY <prefix>" and blocks until killed (mode "kill") or until a signal
// makes TeardownOnSignal clean up (mode "signal").
func childMain(mode string) int {
	if mode == "signal" {
		defer lab.TeardownOnSignal("", nil)()
	}
	l, err := lab.New(lab.Options{})
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	h, err := l.AddNATHost("c1", lab.EIM)
	if err == nil {
		_, err = l.AddServerHost("srv", lab.ServerAddr)
	}
	if err == nil {
		_, err = h.Start(context.Background(), "sleep", "600")
	}
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	fmt.Println("READY", l.Prefix())
	time.Sleep(10 * time.Minute)
	return 0
}
