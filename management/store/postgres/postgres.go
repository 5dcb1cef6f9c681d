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
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"petrel/internal/backoff"
	"petrel/internal/keys"
	"petrel/management/model"
	"petrel/management/store"
	"petrel/management/store/internal/codec"
	"petrel/management/store/internal/migrate"
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
	log   *slog.Logger
	pool  *pgxpool.Pool
	stmts statements
}

var _ store.Store = (*Store)(nil)

// Open connects to dsn (any form pgx accepts), applies pending migrations
// and returns the store. A database newer than this binary fails with
// store.ErrSchemaNewer. Errors do not contain the DSN.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("open postgres: invalid connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s := &Store{log: log.With("component", "store-postgres"), pool: pool, stmts: newStatements()}
	if err := s.migrate(ctx, ms); err != nil {
		pool.Close()
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
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var cur int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	latest := migrate.Latest(ms)
	if cur > latest {
		return fmt.Errorf("database at version %d, binary knows %d: %w", cur, latest, store.ErrSchemaNewer)
	}
	for _, m := range ms[cur:] {
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.Version); err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		s.log.Info("applied migration", "version", m.Version, "name", m.Name)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}

// Close closes the pool (waiting for acquired connections to be released).
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// SchemaVersion reports the applied migration version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// ServerKey returns the persisted server key, creating it exactly once:
// every caller inserts a candidate with ON CONFLICT DO NOTHING and then
// reads whichever row won.
func (s *Store) ServerKey(ctx context.Context) (keys.Private, error) {
	var text string
	err := s.pool.QueryRow(ctx, `SELECT private_key FROM server_key WHERE id = 1`).Scan(&text)
	if errors.Is(err, pgx.ErrNoRows) {
		k, gerr := keys.NewPrivate()
		if gerr != nil {
			return keys.Private{}, fmt.Errorf("generate server key: %w", gerr)
		}
		if _, err := s.pool.Exec(ctx,
			`INSERT INTO server_key (id, private_key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, k.String()); err != nil {
			return keys.Private{}, fmt.Errorf("store server key: %w", err)
		}
		err = s.pool.QueryRow(ctx, `SELECT private_key FROM server_key WHERE id = 1`).Scan(&text)
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
	if err := fn(&tx{ctx: ctx, tx: pgTx, stmts: &s.stmts}); err != nil {
		return err
	}
	if err := pgTx.Commit(ctx); err != nil {
		return fmt.Errorf("commit update: %w", err)
	}
	return nil
}

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
	rows, err := rtx.Query(ctx, `SELECT id, network, created_at, settings FROM accounts ORDER BY id`)
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
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load accounts: %w", err)
	}
	for _, k := range codec.Kinds {
		if err := s.loadKind(ctx, rtx, k, byID); err != nil {
			return nil, err
		}
	}
	return list, nil
}

func (s *Store) loadKind(ctx context.Context, rtx pgx.Tx, k model.Kind, byID map[string]*model.Account) error {
	rows, err := rtx.Query(ctx, s.stmts.load[k])
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
		var sets, ph []string
		for _, c := range cols[1:] {
			sets = append(sets, c+" = excluded."+c)
		}
		for i := range len(cols) + 1 {
			ph = append(ph, "$"+strconv.Itoa(i+1))
		}
		st.put[k] = "INSERT INTO " + table + " (account_id, " + strings.Join(cols, ", ") + ") VALUES (" +
			strings.Join(ph, ", ") + ") ON CONFLICT (account_id, id) DO UPDATE SET " + strings.Join(sets, ", ")
		st.delete[k] = "DELETE FROM " + table + " WHERE account_id = $1 AND id = $2"
	}
	return st
}
