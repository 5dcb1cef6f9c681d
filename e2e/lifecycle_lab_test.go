//go:build lab

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"petrel/lab"
)

// A flushed NAT mapping (conntrack -F on both routers) breaks the direct
// path's mappings; the pair recovers and ping works again.
func TestRecoversAfterNATFlush(t *testing.T) {
	c := newCluster(t)
	a, b, sa, sb := pair(t, c, lab.EIM, lab.EIM, "p2p")
	ctx := context.Background()
	if err := a.WaitPing(ctx, sb.OverlayIP(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*lab.Host{a.Host, b.Host} {
		if err := h.FlushConntrack(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.WaitPing(ctx, sb.OverlayIP(), 90*time.Second); err != nil {
		t.Fatalf("after conntrack flush: %v", err)
	}
	if err := b.WaitPing(ctx, sa.OverlayIP(), 90*time.Second); err != nil {
		t.Fatalf("after conntrack flush: %v", err)
	}
	st, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after flush: a sees b on %s (%s)", st.Peer("b").Path, st.Peer("b").RelayReason)
}

// SIGTERM: the agent removes its TUN interface and clears its journal.
// SIGKILL: the journal stays, and `petrel debug cleanup` removes the TUN
// interface the crashed agent left behind.
func TestAgentCleanup(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	a, b, _, _ := pair(t, c, lab.EIM, lab.EIM, "p2p")
	for _, ag := range []*Agent{a, b} {
		if ok, err := ag.HasIface(ctx); err != nil || !ok {
			t.Fatalf("%s: TUN %s missing while up (err %v)", ag.Name, Iface, err)
		}
	}

	if err := a.Proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Proc.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("agent a did not exit within 30 s of SIGTERM")
	}
	if err := a.Proc.Wait(); err != nil {
		t.Errorf("agent a exit after SIGTERM: %v\n%s", err, tail(a.Proc.Output(), 2000))
	}
	if links, err := a.Links(ctx); err != nil {
		t.Fatal(err)
	} else if strings.Contains(links, Iface) {
		t.Errorf("after SIGTERM the namespace still has %s:\n%s", Iface, links)
	}
	if rules, err := a.Host.Run(ctx, "ip", "rule", "show"); err == nil && strings.Contains(rules, "7120") {
		t.Errorf("after SIGTERM policy rules remain:\n%s", rules)
	}
	if _, err := os.Stat(filepath.Join(a.StateDir, "cleanup.journal")); err == nil {
		t.Errorf("after SIGTERM the cleanup journal is not empty")
	}

	if err := b.Proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-b.Proc.Done()
	if _, err := os.Stat(filepath.Join(b.StateDir, "cleanup.journal")); err != nil {
		t.Fatalf("after SIGKILL the cleanup journal is gone: %v", err)
	}
	// A kernel TUN dies with its last file descriptor; one that outlives
	// the process (persistent, or held by a stuck child) is what cleanup
	// is for. Recreate it persistent if the kernel already removed it.
	if ok, _ := b.HasIface(ctx); !ok {
		if _, err := b.Host.Run(ctx, "ip", "tuntap", "add", "dev", Iface, "mode", "tun"); err != nil {
			t.Fatal(err)
		}
	}
	out, err := b.Host.Run(ctx, b.Bins.Petrel, "debug", "cleanup", "--state-dir", b.StateDir)
	if err != nil {
		t.Fatalf("petrel debug cleanup: %v", err)
	}
	t.Logf("petrel debug cleanup: %s", strings.TrimSpace(out))
	if ok, err := b.HasIface(ctx); err != nil || ok {
		t.Errorf("after debug cleanup %s still exists (err %v)", Iface, err)
	}
	if _, err := os.Stat(filepath.Join(b.StateDir, "cleanup.journal")); err == nil {
		t.Errorf("after debug cleanup the journal is not empty")
	}
}
