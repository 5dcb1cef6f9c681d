// Package migrate reads a dialect's embedded, numbered migration files
// (NNNN_description.sql) into an ordered list and applies the pending ones
// inside a transaction the dialect opens (it owns the transaction, the
// locking and the SQL text of the bookkeeping table).
//
// Imported only by management/store/sqlite and management/store/postgres.
// Load and Latest are pure; Apply uses the caller's transaction on the
// caller's goroutine.
package migrate

import (
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"

	"petrel/management/store"
)

// Migration is one forward-only schema step.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Load returns the *.sql files of dir in fsys ordered by version. Versions
// must start at 1 and have no gaps or duplicates.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %q: name must be NNNN_description.sql", name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read migration %q: %w", name, err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %q: expected version %d", m.Name, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no migrations in %s", dir)
	}
	return ms, nil
}

// Latest is the newest version in ms.
func Latest(ms []Migration) int { return ms[len(ms)-1].Version }

// VersionQuery reads the applied version (0 on a fresh database).
const VersionQuery = `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`

// Tx is the migrating transaction, as the dialect runs statements in it.
type Tx struct {
	Exec     func(q string, args ...any) error
	QueryInt func(q string) (int, error)
}

// NewerError refuses a database written by a newer binary: its schema
// version is above the newest migration this binary has. Running on it would
// read and write columns and tables this binary does not know, so the only
// way on is upgrading petrel-server (migrations are forward-only; there is
// no downgrade). It matches store.ErrSchemaNewer with errors.Is.
type NewerError struct {
	Version   int // the database's schema version
	Supported int // the newest version this binary knows
}

func (e *NewerError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this petrel-server supports (%d); upgrade petrel-server",
		e.Version, e.Supported)
}

// Unwrap makes errors.Is(err, store.ErrSchemaNewer) hold.
func (e *NewerError) Unwrap() error { return store.ErrSchemaNewer }

// Apply creates schema_migrations with createTable if needed, refuses a
// database newer than ms (*NewerError, which is store.ErrSchemaNewer), then
// runs every pending migration and records it with record (one parameter:
// the version). When it refuses it has run nothing but createTable; the
// caller rolls the transaction back.
func Apply(tx Tx, createTable, record string, ms []Migration, log *slog.Logger) error {
	if err := tx.Exec(createTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	cur, err := tx.QueryInt(VersionQuery)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	latest := Latest(ms)
	if cur > latest {
		return &NewerError{Version: cur, Supported: latest}
	}
	for _, m := range ms[cur:] {
		if err := tx.Exec(m.SQL); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
		if err := tx.Exec(record, m.Version); err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		log.Info("applied migration", "version", m.Version, "name", m.Name)
	}
	return nil
}
