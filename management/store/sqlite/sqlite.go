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
	"time"

	"petrel/internal/keys"
	"petrel/management/model"
	"petrel/management/store"
	"petrel/management/store/internal/migrate"
	"petrel/management/store/internal/rows"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// BusyTimeout is how long a connection waits for another writer.
const BusyTimeout = 10 * time.Second

// Store is a SQLite-backed store.Store.
type Store struct {
	log   *slog.Logger
	lock  *lockFile // single-writer lock, held until Close
	write *sql.DB   // one connection, BEGIN IMMEDIATE
	read  *sql.DB
	stmts rows.Statements
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed, mode 0600) the database file at path and
// applies pending migrations; existing database, -wal and -shm files are
// tightened to 0600 (the database holds the server's private key). It fails
// with store.ErrSchemaNewer if the database was written by a newer binary,
// and refuses a connection on which the durability settings (WAL,
// synchronous=FULL, foreign keys; see durablePragmas) did not take effect.
//
// One writer per database: Open takes an exclusive lock on PATH.lock (in the
// data directory) for the store's life and fails with store.ErrLocked,
// naming the directory and the holder's pid, while another Store — in this
// process or another — has it open. Close releases it.
func Open(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	if path == "" {
		return nil, errors.New("open sqlite: empty path")
	}
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	return open(ctx, path, ms, log)
}

// open is Open with the migrations to apply: tests pass a prefix of them to
// leave a database as an older binary would have.
func open(ctx context.Context, path string, ms []migrate.Migration, log *slog.Logger) (*Store, error) {
	lock, err := acquireLock(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if err := restrictFiles(path); err != nil {
		lock.release()
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
	s := &Store{log: log.With("component", "store-sqlite"), lock: lock, stmts: rows.NewStatements(placeholder)}
	if s.write, err = sql.Open("sqlite", dsn("immediate")); err != nil {
		lock.release()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	s.write.SetConnMaxIdleTime(0)
	if s.read, err = sql.Open("sqlite", dsn("deferred")); err != nil {
		s.write.Close()
		lock.release()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	s.read.SetMaxOpenConns(4)
	if err := checkDurability(ctx, s.write); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
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
	mtx := migrate.Tx{
		Exec: func(q string, args ...any) error {
			_, err := tx.ExecContext(ctx, q, args...)
			return err
		},
		QueryInt: func(q string) (n int, err error) {
			err = tx.QueryRowContext(ctx, q).Scan(&n)
			return n, err
		},
	}
	if err := migrate.Apply(mtx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL DEFAULT (unixepoch())
	) STRICT`, `INSERT INTO schema_migrations (version) VALUES (?)`, ms, s.log); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}

// Close releases both connection pools, then the single-writer lock.
func (s *Store) Close() error {
	var errs []error
	if s.read != nil {
		errs = append(errs, s.read.Close())
	}
	if s.write != nil {
		errs = append(errs, s.write.Close())
	}
	errs = append(errs, s.lock.release())
	return errors.Join(errs...)
}

// SchemaVersion reports the applied migration version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.read.QueryRowContext(ctx, migrate.VersionQuery).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// ServerKey returns the persisted server key, creating it exactly once.
// The write pool has one connection, so the insert and the re-read see the
// same state; losers of a race read the winner's key.
func (s *Store) ServerKey(ctx context.Context) (keys.Private, error) {
	readFrom := func(db *sql.DB) func() (string, error) {
		return func() (text string, err error) {
			err = db.QueryRowContext(ctx, rows.ServerKeyQuery).Scan(&text)
			return text, err
		}
	}
	return rows.ServerKey(sql.ErrNoRows, readFrom(s.read), func(text string) error {
		_, err := s.write.ExecContext(ctx,
			`INSERT INTO server_key (id, private_key) VALUES (1, ?) ON CONFLICT (id) DO NOTHING`, text)
		return err
	}, readFrom(s.write))
}

// Update runs fn in one BEGIN IMMEDIATE transaction on the single write
// connection; fn's error (or a failed commit) rolls everything back.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	sqlTx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin update: %w", err)
	}
	t := &rows.Tx{Conn: &conn{ctx: ctx, tx: sqlTx}, Stmts: &s.stmts, Queries: &queries}
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
	return rows.LoadAccounts(ctx, func(ctx context.Context, q string) (rows.Rows, error) {
		return rtx.QueryContext(ctx, q)
	}, &s.stmts)
}

// LoadAccount reads one account and its objects in one read transaction.
func (s *Store) LoadAccount(ctx context.Context, id string) (*model.Account, error) {
	rtx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin load: %w", err)
	}
	defer rtx.Rollback()
	return rows.LoadAccount(ctx, func(ctx context.Context, q string, args ...any) (rows.Rows, error) {
		return rtx.QueryContext(ctx, q, args...)
	}, &s.stmts, id)
}

// ListEvents reads the account's matching audit events on the read pool.
func (s *Store) ListEvents(ctx context.Context, accountID string, f model.EventFilter) ([]model.Event, error) {
	return rows.ListEvents(ctx, func(ctx context.Context, q string, args ...any) (rows.Rows, error) {
		return s.read.QueryContext(ctx, q, args...)
	}, placeholder, accountID, f)
}

// placeholder is SQLite's positional parameter.
func placeholder(int) string { return "?" }
