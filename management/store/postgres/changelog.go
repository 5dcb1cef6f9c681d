package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"petrel/management/store"
	"petrel/management/store/internal/rows"
)

// writeChangeLog stores, in the write transaction, one account_changes row
// per account the transaction advanced (shared stores only; log is nil
// otherwise). A version's row exists exactly when its commit does.
func (s *Store) writeChangeLog(ctx context.Context, tx pgx.Tx, log *rows.ChangeLog) error {
	if log == nil {
		return nil
	}
	rs, err := log.Rows()
	if err != nil {
		return err
	}
	for _, r := range rs {
		if _, err := tx.Exec(ctx, `INSERT INTO account_changes (account_id, version, changes) VALUES ($1, $2, $3)`,
			r.AccountID, r.Version, r.Changes); err != nil {
			return fmt.Errorf("write change log of account %s: %w", r.AccountID, mapErr(err))
		}
	}
	return nil
}

// Changes implements store.Feed: the account's change-log rows after
// version after, oldest first, at most limit.
func (s *Store) Changes(ctx context.Context, accountID string, after int64, limit int) ([]store.AccountChange, error) {
	rs, err := s.pool.Query(ctx, `SELECT version, changes FROM account_changes
		WHERE account_id = $1 AND version > $2 ORDER BY version LIMIT $3`, accountID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read change log: %w", err)
	}
	var out []store.AccountChange
	var v int64
	var text string
	_, err = pgx.ForEachRow(rs, []any{&v, &text}, func() error {
		c, err := rows.DecodeChange(v, text)
		if err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read change log of account %s: %w", accountID, err)
	}
	return out, nil
}

// pruneChangeLog drops change-log rows older than store.ChangeLogKeep.
func (s *Store) pruneChangeLog(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM account_changes WHERE at < now() - make_interval(secs => $1)`,
		store.ChangeLogKeep.Seconds())
	if err != nil {
		return fmt.Errorf("prune change log: %w", err)
	}
	return nil
}
