package server

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/client/mgmt"
	"petrel/management"
	"petrel/management/store/storetest"
	"petrel/proto/managementpb"
)

// TestFenceMovesAgents: an instance whose database probe fails ends its
// agents' Sync and signal streams with Unavailable within the fence time
// and refuses Logins and new streams, while the other instance serves;
// the first good probe lifts the fence. (The real database frozen with
// SIGSTOP is in e2e/ha.)
func TestFenceMovesAgents(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	var down atomic.Bool
	cfg := func(probe bool) Config {
		c := loopbackConfig(t, t.TempDir())
		c.Store, c.HA = dsn, true
		c.clusterBeat, c.clusterTTL = 100*time.Millisecond, time.Minute
		c.fenceAfter = time.Second
		if probe {
			c.fenceProbe = func(ctx context.Context) error {
				if down.Load() {
					<-ctx.Done() // a frozen database: the ping hangs
					return ctx.Err()
				}
				return nil
			}
		}
		return c
	}
	srv1 := start(t, cfg(true))
	srv2 := start(t, cfg(false))
	waitFor(t, "the second instance has the account", func() bool { return len(srv2.Management().Accounts()) == 1 })
	ks := registerPeers(t, 3, srv1, srv2)
	ctx := testCtx(t)

	mc, err := mgmt.Dial(ctx, strings.TrimPrefix(srv1.PublicURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	synced := make(chan struct{}, 1)
	syncDone := make(chan error, 1)
	go func() {
		syncDone <- mc.Sync(ctx, ks[0], &managementpb.SyncRequest{}, func(*managementpb.SyncResponse) error {
			select {
			case synced <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	select {
	case <-synced:
	case err := <-syncDone:
		t.Fatalf("sync on the healthy instance: %v", err)
	case <-time.After(deadline):
		t.Fatal("no full map")
	}
	sig := connectSignal(t, srv1, ks[1])

	// Healthy probes never fence.
	time.Sleep(2 * time.Second)
	if srv1.Management().Fenced() || srv1.fence.fences.Load() != 0 {
		t.Fatal("fenced while the database answers")
	}

	down.Store(true)
	fencedAt := time.Now()
	select {
	case err := <-syncDone:
		if status.Code(err) != codes.Unavailable || mgmt.NeedsLogin(err) {
			t.Fatalf("sync ended with %v, want Unavailable (retry elsewhere)", err)
		}
	case <-time.After(deadline):
		t.Fatal("the fenced instance kept the Sync stream")
	}
	t.Logf("Sync stream closed %v after the probe started failing (fence after 1 s)", time.Since(fencedAt).Round(time.Millisecond))
	waitFor(t, "signal session closed by the fence", func() bool { return srv1.sig.Connected() == 0 })
	_ = sig

	_, err = srv1.Management().Login(ctx, ks[2].Public(), &managementpb.LoginRequest{Hostname: "p2"})
	if management.KindOf(err) != management.KindUnavailable {
		t.Fatalf("login on the fenced instance: %v, want unavailable", err)
	}
	err = mc.Sync(ctx, ks[0], &managementpb.SyncRequest{}, func(*managementpb.SyncResponse) error { return errors.New("got a map while fenced") })
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("new sync on the fenced instance: %v, want Unavailable", err)
	}
	if _, err := srv2.Management().Login(ctx, ks[2].Public(), &managementpb.LoginRequest{Hostname: "p2"}); err != nil {
		t.Fatalf("the other instance refused a login: %v", err)
	}

	down.Store(false)
	waitFor(t, "unfenced", func() bool { return !srv1.Management().Fenced() })
	if _, err := srv1.Management().Login(ctx, ks[2].Public(), &managementpb.LoginRequest{Hostname: "p2"}); err != nil {
		t.Fatalf("login after the fence lifted: %v", err)
	}
	connectSignal(t, srv1, ks[1])
}
