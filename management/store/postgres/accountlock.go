package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"petrel/management/store"
)

// accountLockClass is the first key of the two-int advisory locks that
// serialise the writers of one account across instances (the single-int
// keys of the writer and migration locks live in another key space:
// objsubid 1 there, 2 here).
const accountLockClass = 0x70657472 // "petr"

// accountLockKey maps an account ID to the lock's second key. Two
// accounts may share one; they then merely take turns.
func accountLockKey(id string) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int32(h.Sum32())
}

// LockAccount takes the cross-instance write lock of one account (a
// session advisory lock on a connection of its own, so a crashed holder
// releases it with its connection) and returns the account's stored
// version as seen under the lock, so the caller can catch up before it
// computes its change (HA; docs/adr-005-ha-control-plane.md). unlock must
// be called; it never blocks for long.
func (s *Store) LockAccount(ctx context.Context, id string) (version int64, unlock func(), err error) {
	conn, err := s.lockConns().Acquire(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("lock account: %w", err)
	}
	key := accountLockKey(id)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, int32(accountLockClass), key); err != nil {
		conn.Release()
		return 0, nil, fmt.Errorf("lock account: %w", err)
	}
	unlock = func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, $2)`, int32(accountLockClass), key); err != nil {
			// Closing the session releases the lock.
			_ = conn.Conn().Close(uctx)
		}
		conn.Release()
	}
	if err := conn.QueryRow(ctx, `SELECT version FROM accounts WHERE id = $1`, id).Scan(&version); err != nil {
		unlock()
		if errors.Is(err, pgx.ErrNoRows) {
			err = store.ErrNotFound
		}
		return 0, nil, fmt.Errorf("lock account: read version: %w", err)
	}
	return version, unlock, nil
}

// lockConns is the pool account locks are held on: their own (OpenShared),
// else the main pool.
func (s *Store) lockConns() *pgxpool.Pool {
	if s.lockPool != nil {
		return s.lockPool
	}
	return s.pool
}

// createLockClass keys the lock that serialises account creation across
// instances (one key: every instance creating an account takes turns).
const createLockClass = 0x70657473 // "pets"

// LockCreate takes the cross-instance account-creation lock: the caller
// then catches up with accounts the others created and picks the next
// network from a complete view (HA). unlock must be called.
func (s *Store) LockCreate(ctx context.Context) (unlock func(), err error) {
	conn, err := s.lockConns().Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock account creation: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, 0)`, int32(createLockClass)); err != nil {
		conn.Release()
		return nil, fmt.Errorf("lock account creation: %w", err)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, 0)`, int32(createLockClass)); err != nil {
			_ = conn.Conn().Close(uctx)
		}
		conn.Release()
	}, nil
}
