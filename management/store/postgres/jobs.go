package postgres

import (
	"context"
	"fmt"
	"time"
)

// TouchSeen records that the peers are connected now (HA: the instance
// holding their Sync streams calls it once per interval for all of them,
// and once when a stream opens). The time is the database's, so instances
// with skewed clocks agree. It bumps no account version and notifies
// nobody.
func (s *Store) TouchSeen(ctx context.Context, peerIDs []string) error {
	if len(peerIDs) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO peer_seen (peer_id, seen_at) SELECT unnest($1::text[]), now()
		ON CONFLICT (peer_id) DO UPDATE SET seen_at = GREATEST(peer_seen.seen_at, excluded.seen_at)`, peerIDs)
	if err != nil {
		return fmt.Errorf("touch last seen: %w", err)
	}
	return nil
}

// SeenAges returns, by peer ID, how long ago each recorded last-seen time
// was, on the database's clock.
func (s *Store) SeenAges(ctx context.Context) (map[string]time.Duration, error) {
	rows, err := s.pool.Query(ctx, `SELECT peer_id, EXTRACT(EPOCH FROM (now() - seen_at))::float8 FROM peer_seen`)
	if err != nil {
		return nil, fmt.Errorf("read last seen: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Duration{}
	for rows.Next() {
		var id string
		var secs float64
		if err := rows.Scan(&id, &secs); err != nil {
			return nil, fmt.Errorf("read last seen: %w", err)
		}
		out[id] = time.Duration(secs * float64(time.Second))
	}
	return out, rows.Err()
}

// ClaimJob reports whether this instance runs job for slot: the first
// instance to claim a (job, slot) gets true, every later claim false, so
// a singleton job runs once per slot across all instances without a
// standing leader. Claims older than a day, last-seen rows of peers that
// no longer exist and change-log rows older than store.ChangeLogKeep are
// pruned by the claim that wins.
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
	if err := s.pruneChangeLog(ctx); err != nil {
		return true, err
	}
	return true, nil
}
