package storeopen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"petrel/management/store"
)

func TestParse(t *testing.T) {
	cases := []struct {
		spec, dataDir, kind, path string
		wantErr                   bool
	}{
		{"", "/data", "sqlite", "/data/petrel.db", false},
		{"sqlite", "/data", "sqlite", "/data/petrel.db", false},
		{"sqlite", "", "", "", true},
		{"sqlite:///var/lib/p.db", "/data", "sqlite", "/var/lib/p.db", false},
		{"sqlite://rel.db", "", "sqlite", "rel.db", false},
		{"sqlite://", "/data", "", "", true},
		{"postgres://u:secret@h/db", "", "postgres", "", false},
		{"postgresql://h/db?sslmode=disable", "", "postgres", "", false},
		{"mysql://u:secret@h/db", "", "", "", true},
	}
	for _, c := range cases {
		kind, path, err := Parse(c.spec, c.dataDir)
		if (err != nil) != c.wantErr || kind != c.kind || path != c.path {
			t.Errorf("Parse(%q, %q) = %q, %q, %v", c.spec, c.dataDir, kind, path, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Parse(%q) error leaks the spec: %v", c.spec, err)
		}
	}
}

func TestOpenSQLite(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), "", dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(context.Background()); err != nil || v < 1 {
		t.Fatalf("schema version %d, %v", v, err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "petrel.db")); len(m) != 1 {
		t.Fatalf("database file not created in data dir")
	}
}

// TestOpenNewerSchemaSQLite: what petrel-server prints when an older binary
// meets a database a newer one migrated.
func TestOpenNewerSchemaSQLite(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	s, err := Open(ctx, "", dir, log)
	if err != nil {
		t.Fatal(err)
	}
	latest, err := s.SchemaVersion(ctx)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`INSERT INTO schema_migrations (version) VALUES (?)`, latest+5)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, "", dir, log)
	if err == nil {
		s.Close()
		t.Fatal("opened a database newer than this binary")
	}
	want := fmt.Sprintf("open sqlite store: database schema version %d is newer than this petrel-server supports (%d); upgrade petrel-server",
		latest+5, latest)
	if !errors.Is(err, store.ErrSchemaNewer) || err.Error() != want {
		t.Fatalf("open: %v\nwant store.ErrSchemaNewer: %s", err, want)
	}
}
