package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"petrel/management/store"
	"petrel/management/store/internal/codec"
	"petrel/management/store/internal/rows"
)

// queries is this dialect's SQL for the shared store.Tx implementation.
var queries = rows.Queries{
	CreateAccount: `INSERT INTO accounts (id, network, created_at, settings) VALUES (?, ?, ?, ?)`,
	SaveSettings:  `UPDATE accounts SET settings = ? WHERE id = ?`,
	UseKey: `UPDATE setup_keys SET used_times = used_times + 1, last_used = ?1
		WHERE key_hash = ?2 AND revoked = 0 AND (expires_at IS NULL OR expires_at > ?1)
		  AND (usage_limit = 0 OR used_times < usage_limit)
		RETURNING ` + rows.SetupKeyCols,
	ReadKey:     `SELECT ` + rows.SetupKeyCols + ` FROM setup_keys WHERE key_hash = ?`,
	BumpVersion: `UPDATE accounts SET version = version + 1 WHERE id = ? AND version = ?`,
	ReadVersion: `SELECT version FROM accounts WHERE id = ?`,
	AppendEvent: rows.AppendEventSQL(placeholder),
}

// conn is rows.Conn on one write transaction. SQLite keeps a transaction
// usable after a failed statement, so guarded writes need no savepoint.
type conn struct {
	ctx context.Context
	tx  *sql.Tx
}

func (c *conn) Exec(q string, args ...any) (int64, error) {
	res, err := c.tx.ExecContext(c.ctx, q, args...)
	if err != nil {
		return 0, mapErr(err)
	}
	return res.RowsAffected()
}

func (c *conn) ExecGuarded(q string, args ...any) error {
	if _, err := c.tx.ExecContext(c.ctx, q, args...); err != nil {
		return mapErr(err)
	}
	return nil
}

func (c *conn) QueryRow(q string, args []any, dest ...any) error {
	err := c.tx.QueryRowContext(c.ctx, q, args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return rows.ErrNoRows
	}
	if err != nil {
		return mapErr(err)
	}
	return nil
}

// mapErr turns constraint violations into the store's sentinel errors.
func mapErr(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%s already used: %w", uniqueField(se.Error()), store.ErrConflict)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("account: %w", store.ErrNotFound)
	}
	return err
}

// uniqueField extracts the protected field from a message like
// "UNIQUE constraint failed: peers.account_id, peers.ip (2067)".
func uniqueField(msg string) string {
	const marker = "constraint failed: "
	i := strings.LastIndex(msg, marker)
	if i < 0 {
		return "value"
	}
	rest := msg[i+len(marker):]
	if i := strings.Index(rest, " ("); i >= 0 {
		rest = rest[:i]
	}
	cols := strings.Split(rest, ", ")
	table, col, _ := strings.Cut(strings.TrimSpace(cols[len(cols)-1]), ".")
	return codec.ConflictField(table, col)
}
