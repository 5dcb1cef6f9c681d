package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"petrel/management/store"
	"petrel/management/store/internal/codec"
	"petrel/management/store/internal/rows"
)

// queries is this dialect's SQL for the shared store.Tx implementation.
var queries = rows.Queries{
	CreateAccount: `INSERT INTO accounts (id, network, created_at, settings) VALUES ($1, $2, $3, $4)`,
	SaveSettings:  `UPDATE accounts SET settings = $1 WHERE id = $2`,
	UseKey: `UPDATE setup_keys SET used_times = used_times + 1, last_used = $1
		WHERE key_hash = $2 AND NOT revoked AND (expires_at IS NULL OR expires_at > $1)
		  AND (usage_limit = 0 OR used_times < usage_limit)
		RETURNING ` + rows.SetupKeyCols,
	ReadKey:     `SELECT ` + rows.SetupKeyCols + ` FROM setup_keys WHERE key_hash = $1`,
	BumpVersion: `UPDATE accounts SET version = version + 1 WHERE id = $1 AND version = $2`,
	ReadVersion: `SELECT version FROM accounts WHERE id = $1`,
	AppendEvent: rows.AppendEventSQL(placeholder),
}

// notifyChannel is the channel OpenShared stores notify on; the payload is
// "<account id> <version>".
const notifyChannel = "petrel_account"

// sharedQueries are queries for OpenShared: creating an account and
// bumping its version also queue the notification, sent by PostgreSQL when
// (and only if) the transaction commits.
var sharedQueries = func() rows.Queries {
	q := queries
	notify := ` RETURNING pg_notify('` + notifyChannel + `', id || ' ' || version)`
	q.CreateAccount += notify
	q.BumpVersion += notify // RETURNING sees the new version
	return q
}()

// conn is rows.Conn on one SERIALIZABLE transaction.
type conn struct {
	ctx context.Context
	tx  pgx.Tx
}

func (c *conn) Exec(q string, args ...any) (int64, error) {
	tag, err := c.tx.Exec(c.ctx, q, args...)
	if err != nil {
		return 0, mapErr(err)
	}
	return tag.RowsAffected(), nil
}

// ExecGuarded runs one write under a savepoint (one round trip when it
// succeeds): a constraint violation rolls back only this statement, so the
// transaction stays usable as it does on SQLite.
func (c *conn) ExecGuarded(q string, args ...any) error {
	b := &pgx.Batch{}
	b.Queue("SAVEPOINT petrel_w")
	b.Queue(q, args...)
	b.Queue("RELEASE SAVEPOINT petrel_w")
	br := c.tx.SendBatch(c.ctx, b)
	_, err1 := br.Exec()
	_, err2 := br.Exec()
	_, err3 := br.Exec()
	if err := br.Close(); err != nil && err1 == nil && err2 == nil && err3 == nil {
		err3 = err
	}
	if err1 != nil {
		return mapErr(err1)
	}
	if err2 != nil {
		if _, rerr := c.tx.Exec(c.ctx, "ROLLBACK TO SAVEPOINT petrel_w"); rerr != nil {
			return mapErr(errors.Join(err2, fmt.Errorf("rollback to savepoint: %w", rerr)))
		}
		return mapErr(err2)
	}
	if err3 != nil {
		return mapErr(err3)
	}
	return nil
}

func (c *conn) QueryRow(q string, args []any, dest ...any) error {
	err := c.tx.QueryRow(c.ctx, q, args...).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return rows.ErrNoRows
	}
	if err != nil {
		return mapErr(err)
	}
	return nil
}

// conflictFields maps our named unique constraints to field names.
var conflictFields = map[string][2]string{
	"accounts_pkey":                 {"accounts", "id"},
	"peers_public_key_uniq":         {"peers", "public_key"},
	"peers_ip_uniq":                 {"peers", "ip"},
	"peers_dns_label_uniq":          {"peers", "dns_label"},
	"groups_name_uniq":              {"groups", "name"},
	"setup_keys_key_hash_uniq":      {"setup_keys", "key_hash"},
	"admin_tokens_token_hash_uniq":  {"admin_tokens", "token_hash"},
	"users_idp_key_uniq":            {"users", "idp_key"},
	"access_tokens_token_hash_uniq": {"access_tokens", "token_hash"},
}

// mapErr turns constraint violations into the store's sentinel errors
// (keeping the driver error in the chain so retries can see SQLSTATE).
func mapErr(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case "23505": // unique_violation
		field := pe.ConstraintName
		if tc, ok := conflictFields[pe.ConstraintName]; ok {
			field = codec.ConflictField(tc[0], tc[1])
		}
		return fmt.Errorf("%s already used: %w", field, store.ErrConflict)
	case "23503": // foreign_key_violation
		return fmt.Errorf("account: %w", store.ErrNotFound)
	}
	return err
}
