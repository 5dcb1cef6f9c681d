//go:build lab

package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"petrel/lab"
)

// bins are built once in TestMain.
var bins Binaries

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "petrel-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	bins, err = Build(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := lab.RunTests(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// newCluster builds a lab with the control plane running. Process logs go
// to a per-test directory that is kept (and named) when the test fails.
func newCluster(t *testing.T) *Cluster {
	t.Helper()
	logDir, err := os.MkdirTemp("", "petrel-e2e-"+t.Name()+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("E2E_KEEP_LOGS") != "" {
			t.Logf("process logs kept in %s", logDir)
			return
		}
		os.RemoveAll(logDir)
	})
	l := lab.NewT(t, lab.Options{LogDir: logDir})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := NewCluster(ctx, l, bins, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pair starts agents "a" and "b" behind NATs of the given kinds and waits
// until each sees the other connected on path. It returns both statuses.
func pair(t *testing.T, c *Cluster, ka, kb lab.NATKind, path string, extra ...string) (a, b *Agent, sa, sb *Status) {
	t.Helper()
	ctx := context.Background()
	var err error
	if a, err = c.NewAgent(ctx, "a", ka, extra...); err != nil {
		t.Fatal(err)
	}
	if b, err = c.NewAgent(ctx, "b", kb, extra...); err != nil {
		t.Fatal(err)
	}
	if sa, err = a.WaitPeerPath(ctx, 90*time.Second, "b", path); err != nil {
		t.Fatal(err)
	}
	if sb, err = b.WaitPeerPath(ctx, 90*time.Second, "a", path); err != nil {
		t.Fatal(err)
	}
	return a, b, sa, sb
}

// pingAndTransfer checks system ping both ways and a 10 MB TCP transfer a→b.
func pingAndTransfer(t *testing.T, a, b *Agent, sa, sb *Status) {
	t.Helper()
	ctx := context.Background()
	if err := a.WaitPing(ctx, sb.OverlayIP(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitPing(ctx, sa.OverlayIP(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if out, err := a.Ping(ctx, sb.OverlayIP(), 5); err != nil {
		t.Fatalf("ping a→b: %v", err)
	} else {
		t.Logf("ping a→b: %s", lastLine(out))
	}
	if err := Transfer(ctx, a, b, sb.OverlayIP(), 10<<20, 90*time.Second); err != nil {
		t.Fatal(err)
	}
}

func lastLine(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			return s[i+1:]
		}
	}
	return s
}
