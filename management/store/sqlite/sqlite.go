// Package sqlite is the embedded SQLite implementation of store.Store
// (pure Go, modernc.org/sqlite). The database runs in WAL mode with
// synchronous=FULL, foreign keys on and a busy timeout. Writes go through one
// connection and BEGIN IMMEDIATE, so Update transactions are serialised
// within this process and against other processes; reads use a separate
// connection pool and see a consistent snapshot.
//
// Imported by management/store/storeopen (and tests). A *Store is safe for
// concurrent use; Tx values are confined to the goroutine running the
// Update callback.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"petrel/internal/keys"
	"petrel/management/model"
	"petrel/management/store"
	"petrel/management/store/internal/codec"
	"petrel/management/store/internal/migrate"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// BusyTimeout is how long a connection waits for another writer.
const BusyTimeout = 10 * time.Second

// Store is a SQLite-backed store.Store.
type Store struct {
	log   *slog.Logger
	write *sql.DB // one connection, BEGIN IMMEDIATE
	read  *sql.DB
	stmts statements
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed, mode 0600) the database file at path and
// applies pending migrations; existing database, -wal and -shm files are
// tightened to 0600 (the database holds the server's private key). It fails
// with store.ErrSchemaNewer if the database was written by a newer binary.
func Open(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	if path == "" {
		return nil, errors.New("open sqlite: empty path")
	}
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	if err := restrictFiles(path); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(BusyTimeout.Milliseconds()))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_foreign_keys", "1")
	dsn := func(txlock string) string {
		q.Set("_txlock", txlock)
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	}
	s := &Store{log: log.With("component", "store-sqlite"), stmts: newStatements()}
	if s.write, err = sql.Open("sqlite", dsn("immediate")); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	s.write.SetConnMaxIdleTime(0)
	if s.read, err = sql.Open("sqlite", dsn("deferred")); err != nil {
		s.write.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	s.read.SetMaxOpenConns(4)
	if err := s.migrate(ctx, ms); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context, ms []migrate.Migration) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL DEFAULT (unixepoch())
	) STRICT`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	latest := migrate.Latest(ms)
	if cur > latest {
		return fmt.Errorf("database at version %d, binary knows %d: %w", cur, latest, store.ErrSchemaNewer)
	}
	for _, m := range ms[cur:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES (?)`, m.Version); err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		s.log.Info("applied migration", "version", m.Version, "name", m.Name)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}

// Close releases both connection pools.
func (s *Store) Close() error {
	var errs []error
	if s.read != nil {
		errs = append(errs, s.read.Close())
	}
	if s.write != nil {
		errs = append(errs, s.write.Close())
	}
	return errors.Join(errs...)
}

// SchemaVersion reports the applied migration version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// ServerKey returns the persisted server key, creating it exactly once.
func (s *Store) ServerKey(ctx context.Context) (keys.Private, error) {
	var text string
	err := s.read.QueryRowContext(ctx, `SELECT private_key FROM server_key WHERE id = 1`).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		k, gerr := keys.NewPrivate()
		if gerr != nil {
			return keys.Private{}, fmt.Errorf("generate server key: %w", gerr)
		}
		// The write pool has one connection, so the insert and the
		// re-read below see the same state; losers of a race read the
		// winner's key.
		if _, err := s.write.ExecContext(ctx,
			`INSERT INTO server_key (id, private_key) VALUES (1, ?) ON CONFLICT (id) DO NOTHING`, k.String()); err != nil {
			return keys.Private{}, fmt.Errorf("store server key: %w", err)
		}
		err = s.write.QueryRowContext(ctx, `SELECT private_key FROM server_key WHERE id = 1`).Scan(&text)
	}
	if err != nil {
		return keys.Private{}, fmt.Errorf("read server key: %w", err)
	}
	k, err := keys.ParsePrivate(text)
	if err != nil {
		return keys.Private{}, fmt.Errorf("parse server key: %w", err)
	}
	return k, nil
}

// Update runs fn in one BEGIN IMMEDIATE transaction on the single write
// connection; fn's error (or a failed commit) rolls everything back.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	sqlTx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin update: %w", err)
	}
	t := &tx{ctx: ctx, tx: sqlTx, stmts: &s.stmts}
	if err := fn(t); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit update: %w", err)
	}
	return nil
}

// LoadAccounts reads every account and all its objects in one read
// transaction (a consistent snapshot).
func (s *Store) LoadAccounts(ctx context.Context) ([]*model.Account, error) {
	rtx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin load: %w", err)
	}
	defer rtx.Rollback()
	rows, err := rtx.QueryContext(ctx, `SELECT id, network, created_at, settings FROM accounts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("load accounts: %w", err)
	}
	var list []*model.Account
	byID := map[string]*model.Account{}
	for rows.Next() {
		var (
			id, network string
			created     *int64
			settings    []byte
		)
		if err := rows.Scan(&id, &network, &created, &settings); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan account: %w", err)
		}
		a, err := codec.DecodeAccount(id, network, created, settings)
		if err != nil {
			rows.Close()
			return nil, err
		}
		list = append(list, a)
		byID[id] = a
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("load accounts: %w", err)
	}
	for _, k := range codec.Kinds {
		if err := s.loadKind(ctx, rtx, k, byID); err != nil {
			return nil, err
		}
	}
	return list, nil
}

func (s *Store) loadKind(ctx context.Context, rtx *sql.Tx, k model.Kind, byID map[string]*model.Account) error {
	rows, err := rtx.QueryContext(ctx, s.stmts.load[k])
	if err != nil {
		return fmt.Errorf("load %s: %w", k, err)
	}
	defer rows.Close()
	for rows.Next() {
		var accountID string
		r := codec.Row{Kind: k}
		if err := rows.Scan(append([]any{&accountID}, r.Targets()...)...); err != nil {
			return fmt.Errorf("scan %s: %w", k, err)
		}
		obj, err := codec.Decode(r)
		if err != nil {
			return err
		}
		if a := byID[accountID]; a != nil {
			codec.AddTo(a, obj)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load %s: %w", k, err)
	}
	return nil
}

// statements holds the per-kind SQL, built once at Open.
type statements struct {
	load   map[model.Kind]string
	put    map[model.Kind]string
	delete map[model.Kind]string
}

func newStatements() statements {
	st := statements{load: map[model.Kind]string{}, put: map[model.Kind]string{}, delete: map[model.Kind]string{}}
	for _, k := range codec.Kinds {
		table := `"` + codec.Tables[k] + `"`
		cols := codec.Columns(k)
		st.load[k] = "SELECT account_id, " + strings.Join(cols, ", ") + " FROM " + table + " ORDER BY account_id, id"
		var sets []string
		for _, c := range cols[1:] {
			sets = append(sets, c+" = excluded."+c)
		}
		st.put[k] = "INSERT INTO " + table + " (account_id, " + strings.Join(cols, ", ") + ") VALUES (?" +
			strings.Repeat(", ?", len(cols)) + ") ON CONFLICT (account_id, id) DO UPDATE SET " + strings.Join(sets, ", ")
		st.delete[k] = "DELETE FROM " + table + " WHERE account_id = ? AND id = ?"
	}
	return st
}
