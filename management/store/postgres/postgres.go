// Package postgres is the PostgreSQL implementation of store.Store (pgx v5,
// pgxpool). Update runs fn in a SERIALIZABLE transaction and retries the
// whole transaction (calling fn again) on serialization failures and
// deadlocks, a few times with jittered backoff. Each constraint-checked
// write runs under a savepoint, so a failed Put leaves the transaction
// usable, as on SQLite.
//
// Imported by management/store/storeopen (and tests). A *Store is safe for
// concurrent use; Tx values are confined to the goroutine running the
// Update callback.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"petrel/internal/backoff"
	"petrel/internal/keys"
	"petrel/management/model"
	"petrel/management/store"
	"petrel/management/store/internal/migrate"
	"petrel/management/store/internal/rows"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// MaxAttempts bounds how often Update runs a transaction that keeps
// failing with serialization errors.
const MaxAttempts = 12

// migrationLock is the advisory lock key serialising concurrent migrators.
const migrationLock = 0x7065747265 // "petre"

// Store is a PostgreSQL-backed store.Store.
type Store struct {
	log       *slog.Logger
	pool      *pgxpool.Pool
	lockPool  *pgxpool.Pool // shared: connections that hold account locks (accountlock.go)
	probe     prober        // shared: the fence's own connection (Ping)
	lock      *pgx.Conn     // session holding writerLock until Close
	shared    bool          // OpenShared: lock held in shared mode, commits notify
	queries   *rows.Queries
	closeOnce sync.Once
	stmts     rows.Statements
	retries   atomic.Uint64 // transactions run again after a serialization failure
}

var _ store.Store = (*Store)(nil)

// Open connects to dsn (any form pgx accepts), applies pending migrations
// and returns the store. A database newer than this binary fails with
// store.ErrSchemaNewer. Errors do not contain the DSN.
//
// One writer per database: Open takes a session advisory lock
// (pg_try_advisory_lock) on a dedicated connection held for the store's
// life and fails with store.ErrLocked, naming the database and the holder,
// while another Store — in this process or another — has it. Close
// releases it.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	return open(ctx, dsn, ms, log, false)
}

// OpenShared is Open for one of several petrel-servers sharing the
// database (--ha, docs/adr-005-ha-control-plane.md). It takes the writer
// lock in shared mode (so a server without --ha is refused while any runs,
// and the reverse), every transaction that creates an account or bumps its
// version also sends NOTIFY petrel_account '<account id> <version>'
// (delivered at commit), and the store is a store.Feed: Follow listens for
// those notifications on a connection of its own.
func OpenShared(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	return open(ctx, dsn, ms, log, true)
}

// open is Open with the migrations to apply: tests pass a prefix of them to
// leave a database as an older binary would have.
func open(ctx context.Context, dsn string, ms []migrate.Migration, log *slog.Logger, shared bool) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("open postgres: invalid connection string")
	}
	lock, err := acquireWriterLock(ctx, cfg, shared)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if shared && !strings.Contains(dsn, "pool_max_conns") {
		// pgxpool's default is max(4, CPUs); an --ha instance also
		// serves every agent's writes and follows the others' commits.
		cfg.MaxConns = max(cfg.MaxConns, sharedPoolConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		releaseWriterLock(lock, shared)
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s := &Store{log: log.With("component", "store-postgres"), pool: pool, lock: lock, shared: shared,
		queries: &queries, stmts: rows.NewStatements(placeholder)}
	if shared {
		s.queries = &sharedQueries
		// Account locks are held on connections of their own, so a
		// holder never waits for a connection that another holder has
		// (the work inside the lock uses the main pool).
		lcfg := cfg.Copy()
		lcfg.MaxConns, lcfg.MinConns = min(lockPoolConns, max(2, cfg.MaxConns/2)), 0
		if s.lockPool, err = pgxpool.NewWithConfig(ctx, lcfg); err != nil {
			pool.Close()
			releaseWriterLock(lock, shared)
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		s.probe.cfg = cfg.ConnConfig
	}
	if err := s.migrate(ctx, ms); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context, ms []migrate.Migration) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("lock migrations: %w", err)
	}
	mtx := migrate.Tx{
		Exec: func(q string, args ...any) error {
			_, err := tx.Exec(ctx, q, args...)
			return err
		},
		QueryInt: func(q string) (n int, err error) {
			err = tx.QueryRow(ctx, q).Scan(&n)
			return n, err
		},
	}
	if err := migrate.Apply(mtx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`, `INSERT INTO schema_migrations (version) VALUES ($1)`, ms, s.log); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}

// Close closes the pool (waiting for acquired connections to be released),
// then ends the writer-lock session.
func (s *Store) Close() error {
	s.pool.Close()
	if s.lockPool != nil {
		s.lockPool.Close()
	}
	s.probe.close()
	s.closeOnce.Do(func() { releaseWriterLock(s.lock, s.shared) })
	return nil
}

// SchemaVersion reports the applied migration version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.pool.QueryRow(ctx, migrate.VersionQuery).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// ServerKey returns the persisted server key, creating it exactly once:
// every caller inserts a candidate with ON CONFLICT DO NOTHING and then
// reads whichever row won.
func (s *Store) ServerKey(ctx context.Context) (keys.Private, error) {
	read := func() (text string, err error) {
		err = s.pool.QueryRow(ctx, rows.ServerKeyQuery).Scan(&text)
		return text, err
	}
	return rows.ServerKey(pgx.ErrNoRows, read, func(text string) error {
		_, err := s.pool.Exec(ctx,
			`INSERT INTO server_key (id, private_key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, text)
		return err
	}, read)
}

// Update runs fn in a SERIALIZABLE transaction, retrying the whole
// transaction (fn included) on serialization failures; fn must therefore
// have no effects outside the Tx. fn's error rolls everything back.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	bo := backoff.Backoff{Min: 2 * time.Millisecond, Max: 100 * time.Millisecond, Factor: 2, Jitter: 1}
	var err error
	for attempt := 1; ; attempt++ {
		err = s.updateOnce(ctx, fn)
		if err == nil || !retryable(err) || attempt >= MaxAttempts {
			return err
		}
		s.retries.Add(1)
		select {
		case <-ctx.Done():
			return fmt.Errorf("update: %w (after %v)", ctx.Err(), err)
		case <-time.After(bo.Next()):
		}
	}
}

func (s *Store) updateOnce(ctx context.Context, fn func(store.Tx) error) error {
	pgTx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return fmt.Errorf("begin update: %w", err)
	}
	defer pgTx.Rollback(ctx) // no-op after commit
	tx := &rows.Tx{Conn: &conn{ctx: ctx, tx: pgTx}, Stmts: &s.stmts, Queries: s.queries}
	if s.shared {
		tx.Log = &rows.ChangeLog{}
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := s.writeChangeLog(ctx, pgTx, tx.Log); err != nil {
		return err
	}
	if err := pgTx.Commit(ctx); err != nil {
		return fmt.Errorf("commit update: %w", err)
	}
	return nil
}

// Retries counts the transactions Update ran again after a serialization
// failure or deadlock (for metrics).
func (s *Store) Retries() uint64 { return s.retries.Load() }

// retryable reports serialization failures and deadlocks.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// LoadAccounts reads everything in one read-only REPEATABLE READ
// transaction (a consistent snapshot).
func (s *Store) LoadAccounts(ctx context.Context) ([]*model.Account, error) {
	rtx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin load: %w", err)
	}
	defer rtx.Rollback(ctx)
	return rows.LoadAccounts(ctx, func(ctx context.Context, q string) (rows.Rows, error) {
		rs, err := rtx.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		return pgRows{rs}, nil
	}, &s.stmts)
}

// LoadAccount reads one account in one read-only REPEATABLE READ
// transaction (a consistent snapshot).
func (s *Store) LoadAccount(ctx context.Context, id string) (*model.Account, error) {
	rtx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin load: %w", err)
	}
	defer rtx.Rollback(ctx)
	return rows.LoadAccount(ctx, func(ctx context.Context, q string, args ...any) (rows.Rows, error) {
		rs, err := rtx.Query(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		return pgRows{rs}, nil
	}, &s.stmts, id)
}

// ListEvents reads the account's matching audit events (one statement, so
// one snapshot, outside any write transaction).
func (s *Store) ListEvents(ctx context.Context, accountID string, f model.EventFilter) ([]model.Event, error) {
	return rows.ListEvents(ctx, func(ctx context.Context, q string, args ...any) (rows.Rows, error) {
		rs, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		return pgRows{rs}, nil
	}, placeholder, accountID, f)
}

// pgRows adapts pgx.Rows (whose Close reports nothing; Err has it) to rows.Rows.
type pgRows struct{ pgx.Rows }

func (r pgRows) Close() error {
	r.Rows.Close()
	return nil
}

// placeholder is PostgreSQL's numbered parameter.
func placeholder(n int) string { return "$" + strconv.Itoa(n) }

// Ping checks that the database answers (the HA fence's probe). It uses a
// connection of its own, so a busy pool is never mistaken for a database
// that is away.
func (s *Store) Ping(ctx context.Context) error {
	if s.probe.cfg == nil {
		return s.pool.Ping(ctx)
	}
	return s.probe.ping(ctx)
}

// Pool sizes of an --ha instance (OpenShared): with the writer lock's,
// the listener's and the probe's own connections, 27 per instance unless
// the DSN's pool_max_conns sets the main pool (the lock pool is half of
// it, at most 8). PostgreSQL's default max_connections (100) fits three
// instances.
const (
	sharedPoolConns = 16
	lockPoolConns   = 8
)

// prober is one connection kept for Ping, re-dialled after any failure.
type prober struct {
	cfg  *pgx.ConnConfig
	mu   sync.Mutex
	conn *pgx.Conn
}

func (p *prober) ping(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		c, err := pgx.ConnectConfig(ctx, p.cfg)
		if err != nil {
			return err
		}
		p.conn = c
	}
	if err := p.conn.Ping(ctx); err != nil {
		_ = p.conn.Close(context.Background())
		p.conn = nil
		return err
	}
	return nil
}

func (p *prober) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.conn.Close(ctx)
		p.conn = nil
	}
}
