package management

import (
	"sync"
	"testing"

	"petrel/management/internal/mgmttest"
	"petrel/management/store/postgres"
	"petrel/management/store/storetest"
)

// TestHABootstrapRace: three instances starting on an empty database at
// once create exactly one default account between them, and then two
// accounts created at once through different instances get different
// networks.
func TestHABootstrapRace(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := mgmttest.Ctx(t)
	var nodes []*Service
	for range 3 {
		st, err := postgres.OpenShared(ctx, dsn, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Config{Store: st, Logger: testLog(t), HA: &HAConfig{Feed: st, SweepInterval: noSweep}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Stop(); st.Close() })
		nodes = append(nodes, s)
	}
	var wg sync.WaitGroup
	created := make([]bool, len(nodes))
	errs := make([]error, len(nodes))
	for i, s := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, created[i], errs[i] = s.Bootstrap(ctx)
		}()
	}
	wg.Wait()
	n := 0
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("bootstrap on instance %d: %v", i, errs[i])
		}
		if created[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d instances created a default account, want exactly 1", n)
	}

	ids := make([]string, 2)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], _, errs[i] = nodes[i+1].CreateAccount(ctx)
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil {
			t.Fatalf("create account: %v", errs[i])
		}
	}
	nets := map[string]string{}
	for _, s := range nodes {
		s.catchUpAll(ctx)
		if got := len(s.Accounts()); got != 3 {
			t.Fatalf("an instance holds %d accounts, want 3", got)
		}
		for _, id := range s.Accounts() {
			snap, err := s.Snapshot(id)
			if err != nil {
				t.Fatal(err)
			}
			if other, dup := nets[snap.Network.String()]; dup && other != id {
				t.Fatalf("accounts %s and %s share network %s", other, id, snap.Network)
			}
			nets[snap.Network.String()] = id
		}
	}
}
