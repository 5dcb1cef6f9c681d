package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"petrel/management/store"
)

// The dashboard's shared state (ui_state, schema v7): sessions and sign-ins
// in progress of petrel-servers sharing the database, so that a browser is
// served by whichever instance the load balancer picks. Keys are hashes of
// cookie values; data is opaque JSON; expiry is the caller's to judge,
// expires_at only bounds how long a row is kept.

// PutUIState inserts or replaces one entry.
func (s *Store) PutUIState(ctx context.Context, kind string, key, data []byte, expires time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO ui_state (kind, key, data, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (kind, key) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at`,
		kind, key, string(data), expires)
	if err != nil {
		return fmt.Errorf("store %s: %w", kind, err)
	}
	return nil
}

// UpdateUIState replaces an existing entry and reports whether there was
// one: an entry removed meanwhile (a sign-out on another instance) stays
// removed.
func (s *Store) UpdateUIState(ctx context.Context, kind string, key, data []byte, expires time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE ui_state SET data = $3, expires_at = $4 WHERE kind = $1 AND key = $2`,
		kind, key, string(data), expires)
	if err != nil {
		return false, fmt.Errorf("update %s: %w", kind, err)
	}
	return tag.RowsAffected() == 1, nil
}

// GetUIState reads one entry (store.ErrNotFound when there is none).
func (s *Store) GetUIState(ctx context.Context, kind string, key []byte) ([]byte, error) {
	var data string
	err := s.pool.QueryRow(ctx, `SELECT data FROM ui_state WHERE kind = $1 AND key = $2`, kind, key).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", kind, err)
	}
	return []byte(data), nil
}

// TakeUIState removes one entry and returns it (store.ErrNotFound when
// there is none): of callers racing for an entry, on any instance, one
// gets it.
func (s *Store) TakeUIState(ctx context.Context, kind string, key []byte) ([]byte, error) {
	var data string
	err := s.pool.QueryRow(ctx, `DELETE FROM ui_state WHERE kind = $1 AND key = $2 RETURNING data`, kind, key).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("take %s: %w", kind, err)
	}
	return []byte(data), nil
}

// DeleteUIState removes one entry if it exists.
func (s *Store) DeleteUIState(ctx context.Context, kind string, key []byte) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM ui_state WHERE kind = $1 AND key = $2`, kind, key); err != nil {
		return fmt.Errorf("delete %s: %w", kind, err)
	}
	return nil
}

// SweepUIState removes the entries that expired before t.
func (s *Store) SweepUIState(ctx context.Context, t time.Time) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM ui_state WHERE expires_at < $1`, t); err != nil {
		return fmt.Errorf("sweep dashboard state: %w", err)
	}
	return nil
}
