package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"petrel/internal/keys"
)

// Presence of signal streams across petrel-servers sharing the database
// (--ha; tables from migration 0004, docs/signal.md "Across instances").
// Every method is one statement on the pool and safe for concurrent use.

// SignalHeartbeat records that instance is alive and reachable at url.
func (s *Store) SignalHeartbeat(ctx context.Context, instance, url string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO signal_instances (instance, url, heartbeat) VALUES ($1, $2, now())
		ON CONFLICT (instance) DO UPDATE SET url = excluded.url, heartbeat = excluded.heartbeat`, instance, url)
	if err != nil {
		return fmt.Errorf("signal heartbeat: %w", err)
	}
	return nil
}

// SignalInstanceGone removes instance and every presence row it holds (a
// clean shutdown; a crashed instance is ignored once its heartbeat ages).
func (s *Store) SignalInstanceGone(ctx context.Context, instance string) error {
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM signal_presence WHERE instance = $1`, instance)
	b.Queue(`DELETE FROM signal_instances WHERE instance = $1`, instance)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("signal instance gone: %w", err)
	}
	return nil
}

// SignalEpoch draws a registration epoch from a sequence: a registration
// that starts later always has a higher one.
func (s *Store) SignalEpoch(ctx context.Context) (int64, error) {
	var epoch int64
	if err := s.pool.QueryRow(ctx, `SELECT nextval('signal_presence_epoch')`).Scan(&epoch); err != nil {
		return 0, fmt.Errorf("signal presence epoch: %w", err)
	}
	return epoch, nil
}

// SignalOpened records that peer's signal stream registered on instance
// with epoch (from SignalEpoch). The row changes only if epoch is newer
// than the stored one, so of two registrations committing out of order the
// newer still wins.
func (s *Store) SignalOpened(ctx context.Context, peer keys.Public, instance string, epoch int64) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO signal_presence (peer_key, instance, epoch, seen_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (peer_key) DO UPDATE SET instance = excluded.instance, epoch = excluded.epoch, seen_at = excluded.seen_at
		WHERE signal_presence.epoch < excluded.epoch`, peer.String(), instance, epoch)
	if err != nil {
		return fmt.Errorf("signal presence: %w", err)
	}
	return nil
}

// SignalClosed removes peer's presence row if it is still the one instance
// wrote with epoch (a newer registration, here or elsewhere, is kept).
func (s *Store) SignalClosed(ctx context.Context, peer keys.Public, instance string, epoch int64) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM signal_presence WHERE peer_key = $1 AND instance = $2 AND epoch = $3`,
		peer.String(), instance, epoch)
	if err != nil {
		return fmt.Errorf("signal presence: %w", err)
	}
	return nil
}

// SignalLookup returns the instance holding peer's signal stream and its
// URL. ok is false when no row names peer or its instance has not sent a
// heartbeat within ttl (a dead instance).
func (s *Store) SignalLookup(ctx context.Context, peer keys.Public, ttl time.Duration) (instance, url string, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT p.instance, i.url FROM signal_presence p
		JOIN signal_instances i ON i.instance = p.instance
		WHERE p.peer_key = $1 AND i.heartbeat > now() - make_interval(secs => $2)`,
		peer.String(), ttl.Seconds()).Scan(&instance, &url)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("signal lookup: %w", err)
	}
	return instance, url, true, nil
}

// SignalReopened is SignalOpened for a registration whose first write
// failed and is retried later with a fresh epoch (drawn after the write
// failed, so it may be higher than that of a newer registration
// elsewhere). It writes only when peer has no row, the row is already
// this instance's (an older epoch), or the row's instance sent no
// heartbeat within ttl; a live row of another instance is kept, as the
// peer may have registered there meanwhile. It reports whether it wrote.
func (s *Store) SignalReopened(ctx context.Context, peer keys.Public, instance string, epoch int64, ttl time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO signal_presence (peer_key, instance, epoch, seen_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (peer_key) DO UPDATE SET instance = excluded.instance, epoch = excluded.epoch, seen_at = excluded.seen_at
		WHERE signal_presence.epoch < excluded.epoch AND (signal_presence.instance = excluded.instance OR NOT EXISTS (
			SELECT 1 FROM signal_instances i WHERE i.instance = signal_presence.instance AND i.heartbeat > now() - make_interval(secs => $4)))`,
		peer.String(), instance, epoch, ttl.Seconds())
	if err != nil {
		return false, fmt.Errorf("signal presence: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
