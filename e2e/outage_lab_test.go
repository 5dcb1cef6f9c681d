//go:build lab

package e2e

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"petrel/lab"
)

// nftIn runs nft inside namespace ns (stdin may be empty).
func nftIn(ctx context.Context, ns, stdin string, args ...string) error {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, "nft"}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return &cmdError{args: args, out: string(out), err: err}
	}
	return nil
}

type cmdError struct {
	args []string
	out  string
	err  error
}

func (e *cmdError) Error() string {
	return "nft " + strings.Join(e.args, " ") + ": " + e.err.Error() + ": " + strings.TrimSpace(e.out)
}

// outage is how long management and signal stay down.
const outage = 60 * time.Second

// Management (and signal) down for 60 s: the relayed tunnel keeps
// passing traffic; after a restart on the same data dir the agents resync
// without re-registering.
func TestManagementOutage(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	a, b, sa, sb := pair(t, c, lab.EIM, lab.Symmetric, "relay")
	if err := a.WaitPing(ctx, sb.OverlayIP(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	before, err := c.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rounds := 0
	for time.Since(start) < outage {
		// Any reply out of three counts; a round without one fails.
		if out, err := a.Ping(ctx, sb.OverlayIP(), 3); err != nil {
			t.Fatalf("during the outage (%s in): a→b: %v\n%s", time.Since(start).Round(time.Second), err, out)
		}
		if _, err := b.Ping(ctx, sa.OverlayIP(), 3); err != nil {
			t.Fatalf("during the outage (%s in): b→a: %v", time.Since(start).Round(time.Second), err)
		}
		rounds++
		time.Sleep(3 * time.Second)
	}
	down, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if down.Management.Connected {
		t.Errorf("status says management connected during the outage")
	}
	t.Logf("outage: %d ping rounds each way answered; a's state %q", rounds, down.State)

	if err := c.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	// The deadline is generous: the signal client's reconnect backoff and
	// its gRPC channel's own connect backoff (30 s caps each) stack.
	for _, x := range []struct {
		ag   *Agent
		peer string
		ip   string
	}{{a, "b", sa.IP}, {b, "a", sb.IP}} {
		st, err := x.ag.WaitStatus(ctx, 150*time.Second, "resync", func(s *Status) bool {
			p := s.Peer(x.peer)
			return s.State == "connected" && s.Management.Connected && s.Signal.Connected &&
				p != nil && p.Status == "connected"
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s resynced %s after the restart", x.ag.Name, time.Since(restarted).Round(100*time.Millisecond))
		if st.IP != x.ip {
			t.Errorf("%s: overlay address changed %s → %s", x.ag.Name, x.ip, st.IP)
		}
	}
	after, err := c.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key := func(ps []ServerPeer) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.ID+" "+p.Name+" "+p.IP)
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(key(before), key(after)) {
		t.Errorf("server peer list changed across the restart:\nbefore %v\nafter  %v", key(before), key(after))
	}
	if err := a.WaitPing(ctx, sb.OverlayIP(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := Transfer(ctx, a, b, sb.OverlayIP(), 1<<20, 60*time.Second); err != nil {
		t.Fatal(err)
	}
}
