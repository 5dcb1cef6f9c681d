package postgres

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"petrel/management/model"
	"petrel/management/store"
	"petrel/management/store/storetest"
)

// TestChangeLogWrittenAndPruned: only a shared store writes the change log
// (one row per version, in the version's transaction); the winner of a job
// slot prunes rows older than store.ChangeLogKeep and keeps newer ones.
func TestChangeLogWrittenAndPruned(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := OpenShared(ctx, dsn, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := model.NewAccount("acc", netip.MustParsePrefix("100.64.0.0/16"), time.Now())
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.CreateAccount(a) }); err != nil {
		t.Fatal(err)
	}
	for v := range int64(3) {
		err := s.Update(ctx, func(tx store.Tx) error {
			if err := tx.BumpVersion("acc", v); err != nil {
				return err
			}
			return tx.Put("acc", &model.Group{ID: "g", Name: "g"})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	rows, err := s.Changes(ctx, "acc", 0, 10)
	if err != nil || len(rows) != 3 || rows[0].Version != 1 || rows[2].Version != 3 {
		t.Fatalf("change log: %+v, %v; want versions 1..3", rows, err)
	}
	if rows, _ := s.Changes(ctx, "acc", 1, 1); len(rows) != 1 || rows[0].Version != 2 {
		t.Fatalf("after 1, limit 1: %+v; want version 2", rows)
	}

	// Versions 1 and 2 age past the keep time; the slot winner prunes them.
	if _, err := s.pool.Exec(ctx, `UPDATE account_changes SET at = now() - make_interval(secs => $1)
		WHERE version < 3`, (store.ChangeLogKeep + time.Minute).Seconds()); err != nil {
		t.Fatal(err)
	}
	if won, err := s.ClaimJob(ctx, "janitor", 1, "i1"); !won || err != nil {
		t.Fatalf("claim: %v, %v", won, err)
	}
	rows, err = s.Changes(ctx, "acc", 0, 10)
	if err != nil || len(rows) != 1 || rows[0].Version != 3 {
		t.Fatalf("after pruning: %+v, %v; want only version 3", rows, err)
	}
	s.Close()

	// Without --ha nothing is logged.
	solo, err := Open(ctx, dsn, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer solo.Close()
	err = solo.Update(ctx, func(tx store.Tx) error {
		if err := tx.BumpVersion("acc", 3); err != nil {
			return err
		}
		return tx.Put("acc", &model.Group{ID: "g", Name: "g2"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if rows, err := solo.Changes(ctx, "acc", 3, 10); err != nil || len(rows) != 0 {
		t.Fatalf("a store without --ha logged %+v, %v", rows, err)
	}
}
