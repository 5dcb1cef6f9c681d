package management

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"petrel/management/internal/mgmttest"
	"petrel/management/model"
)

// TestHAManyAccountsAtOnce: two instances changing eight accounts at once,
// each change holding its account's cross-instance lock while it needs
// more database connections, must all finish: lock holders never wait for
// a connection another holder keeps (they hold theirs in a pool of their
// own), and the fence's probe is not starved by a busy pool (the instances
// stay unfenced).
func TestHAManyAccountsAtOnce(t *testing.T) {
	nodes, _, first := startHA(t, 2, noSweep, false)
	ctx := mgmttest.Ctx(t)
	accts := []string{first}
	for range 7 {
		id, _, err := nodes[0].s.CreateAccount(ctx)
		if err != nil {
			t.Fatal(err)
		}
		accts = append(accts, id)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for _, nd := range nodes {
		for _, acct := range accts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 5 {
					cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
					_, err := nd.s.Put(cctx, acct, &model.Group{Name: fmt.Sprintf("g-%s-%d", nd.name, i)})
					cancel()
					if err != nil {
						errs <- fmt.Errorf("instance %s, account %s: %w", nd.name, acct, err)
						return
					}
				}
			}()
		}
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("changes to eight accounts through two instances did not finish in 90 s (a deadlock on database connections?)")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, nd := range nodes {
		if nd.s.Fenced() {
			t.Errorf("instance %s fenced itself under load", nd.name)
		}
		for _, acct := range accts {
			nd.s.catchUpAccount(ctx, acct)
			snap, err := nd.s.Snapshot(acct)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(snap.Groups); got != 11 { // All + 5 per instance
				t.Errorf("instance %s, account %s: %d groups, want 11", nd.name, acct, got)
			}
		}
	}
}
