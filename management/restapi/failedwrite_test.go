package restapi

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"petrel/management"
	"petrel/management/store"
	"petrel/management/store/sqlite"
)

// failingStore fails every write while fail is set (a full disk, a lost
// database connection), after the service has validated the change.
type failingStore struct {
	store.Store
	fail atomic.Bool
}

func (f *failingStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return f.Store.Update(ctx, fn)
}

// A change the store refuses is refused over REST too, and the API keeps
// answering the old state: no created, renamed or deleted object shows up
// in a later read.
func TestFailedWriteRESTAnswersOldState(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	sq, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "petrel.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	fs := &failingStore{Store: sq}
	svc, err := management.New(management.Config{Store: fs, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	token, _, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := svc.AuthenticateToken(token)
	srv := httptest.NewServer(newContract(t, New(svc, log)))
	t.Cleanup(func() {
		srv.Close()
		svc.Stop()
		_ = sq.Close()
	})
	e := &env{t: t, svc: svc, srv: srv, token: token, acct: acct}

	var keep groupView
	e.must("POST", "/api/groups", map[string]any{"name": "keep"}, 201, &keep)
	read := func() map[string][]byte {
		out := map[string][]byte{}
		for _, path := range []string{"/api/groups", "/api/groups/" + keep.ID, "/api/policies"} {
			st, b := e.do("GET", path, nil)
			if st != 200 {
				t.Fatalf("GET %s: %d %s", path, st, b)
			}
			out[path] = b
		}
		return out
	}
	before := read()

	fs.fail.Store(true)
	for _, w := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/groups", map[string]any{"name": "ghost"}},
		{"PUT", "/api/groups/" + keep.ID, map[string]any{"name": "renamed"}},
		{"DELETE", "/api/groups/" + keep.ID, nil},
		{"POST", "/api/policies", map[string]any{"name": "ghost-policy", "enabled": true,
			"rules": []map[string]any{{"sources": []string{keep.ID}, "destinations": []string{keep.ID}, "bidirectional": true}}}},
	} {
		st, b := e.do(w.method, w.path, w.body)
		if st < 500 {
			t.Fatalf("%s %s with a failing store: %d %s, want a 5xx", w.method, w.path, st, b)
		}
		after := read()
		for path, b := range before {
			if !bytes.Equal(after[path], b) {
				t.Fatalf("GET %s after a failed %s %s:\n%s\nwant the old state:\n%s", path, w.method, w.path, after[path], b)
			}
		}
	}

	// The store works again: the same change goes through (so the reads
	// above would have shown it had it been applied).
	fs.fail.Store(false)
	e.must("PUT", "/api/groups/"+keep.ID, map[string]any{"name": "renamed"}, 200, nil)
	if st, b := e.do("GET", "/api/groups/"+keep.ID, nil); st != 200 || !bytes.Contains(b, []byte(`"renamed"`)) {
		t.Fatalf("after the store recovered: %d %s", st, b)
	}
}
