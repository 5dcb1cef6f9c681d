package restapi

import (
	"context"
	"strings"
	"testing"

	"petrel/management/model"
	"petrel/management/store"
)

// TestStaleAccountIsConflict: when the account changed in the store behind
// this server's back (another writer moved its version on), a mutation is
// answered 409 "aborted" with a message saying what happened and what to
// do, not 500, and nothing is written.
func TestStaleAccountIsConflict(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.must("POST", "/api/groups", map[string]any{"name": "before"}, 201, nil)
	list, err := e.store.LoadAccounts(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("load: %d accounts, %v", len(list), err)
	}
	v := list[0].Version
	if err := e.store.Update(ctx, func(tx store.Tx) error {
		if err := tx.BumpVersion(e.acct, v); err != nil {
			return err
		}
		return tx.Put(e.acct, &model.Group{ID: "other-writer", Name: "other"})
	}); err != nil {
		t.Fatal(err)
	}
	// fails also checks that the refused request changed nothing visible.
	e.fails("POST", "/api/groups", map[string]any{"name": "stale"}, 409, codeAborted,
		"changed in the store by another writer")
	st, body := e.do("DELETE", "/api/groups/before", nil)
	if st != 409 || !strings.Contains(string(body), "restart petrel-server") {
		t.Fatalf("delete on a stale account: %d %s, want 409 saying to restart", st, body)
	}
	list, err = e.store.LoadAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, g := range list[0].Groups {
		names[g.Name] = true
	}
	if list[0].Version != v+1 || names["stale"] || !names["before"] || !names["other"] {
		t.Fatalf("store after refused writes: version %d (want %d), groups %v (want before and other, not stale)",
			list[0].Version, v+1, names)
	}
}
