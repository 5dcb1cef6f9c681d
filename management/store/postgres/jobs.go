package postgres

import (
	"context"
	"fmt"
	"time"
)

// TouchSeen records that the peers were connected at `at` (HA: the
// instance holding their Sync streams calls it once per interval for all
// of them). It never moves a time backwards, bumps no account version and
// notifies nobody.
func (s *Store) TouchSeen(ctx context.Context, peerIDs []string, at time.Time) error {
	if len(peerIDs) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO peer_seen (peer_id, seen_at) SELECT unnest($1::text[]), $2
		ON CONFLICT (peer_id) DO UPDATE SET seen_at = GREATEST(peer_seen.seen_at, excluded.seen_at)`, peerIDs, at)
	if err != nil {
		return fmt.Errorf("touch last seen: %w", err)
	}
	return nil
}

// SeenTimes returns every recorded last-seen time, by peer ID.
func (s *Store) SeenTimes(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT peer_id, seen_at FROM peer_seen`)
	if err != nil {
		return nil, fmt.Errorf("read last seen: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("read last seen: %w", err)
		}
		out[id] = at
	}
	return out, rows.Err()
}

// ClaimJob reports whether this instance runs job for slot: the first
// instance to claim a (job, slot) gets true, every later claim false, so
// a singleton job runs once per slot across all instances without a
// standing leader. Claims older than a day, and last-seen rows of peers
// that no longer exist, are pruned by the claim that wins.
func (s *Store) ClaimJob(ctx context.Context, job string, slot int64, instance string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO job_runs (job, slot, instance, ran_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (job, slot) DO NOTHING`, job, slot, instance)
	if err != nil {
		return false, fmt.Errorf("claim job %s: %w", job, err)
	}
	if tag.RowsAffected() != 1 {
		return false, nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM job_runs WHERE job = $1 AND ran_at < now() - interval '1 day'`, job); err != nil {
		return true, fmt.Errorf("prune job runs: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM peer_seen s WHERE NOT EXISTS (SELECT 1 FROM peers p WHERE p.id = s.peer_id)`); err != nil {
		return true, fmt.Errorf("prune last seen: %w", err)
	}
	return true, nil
}
