package management

import (
	"errors"
	"testing"

	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/management/store"
)

// TestStaleStateNotWritten: when the account changed in the store behind
// the service's back (another writer moved its version on), the service's
// next mutation is refused with store.ErrStale and nothing from its stale
// in-memory state is written.
func TestStaleStateNotWritten(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st := b.Open(t)
		s, _ := startService(t, st)
		ctx := mgmttest.Ctx(t)
		acct := onlyAccount(t, s)
		mustGroup(t, s, acct, "before")
		storedVersion := func() int64 {
			list, err := st.LoadAccounts(ctx)
			if err != nil || len(list) != 1 {
				t.Fatalf("load: %d accounts, %v", len(list), err)
			}
			return list[0].Version
		}
		v := storedVersion()
		if v != 1 { // created at 0; the group mutation bumped it
			t.Fatalf("stored version %d after one mutation, want 1", v)
		}
		// Another writer commits a change to the account.
		if err := st.Update(ctx, func(tx store.Tx) error {
			if err := tx.BumpVersion(acct, v); err != nil {
				return err
			}
			return tx.Put(acct, &model.Group{ID: "other-writer", Name: "other"})
		}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Put(ctx, acct, &model.Group{Name: "stale"})
		if !errors.Is(err, store.ErrStale) || KindOf(err) != KindAborted {
			t.Fatalf("mutation from stale state: %v (kind %v), want store.ErrStale of kind KindAborted", err, KindOf(err))
		}
		list, err := st.LoadAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range list[0].Groups {
			if g.Name == "stale" {
				t.Fatal("stale state was written")
			}
		}
		if list[0].Version != v+1 || list[0].Groups["other-writer"] == nil {
			t.Fatalf("other writer's change lost: version %d (want %d)", list[0].Version, v+1)
		}
		snap, err := s.Snapshot(acct)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range snap.Groups {
			if g.Name == "stale" {
				t.Fatal("refused mutation applied in memory")
			}
		}
	})
}
