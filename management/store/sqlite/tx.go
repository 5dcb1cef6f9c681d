package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"petrel/management/model"
	"petrel/management/store"
	"petrel/management/store/internal/codec"
)

// tx implements store.Tx on one write transaction.
type tx struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts *statements
}

func (t *tx) CreateAccount(a *model.Account) error {
	if a.ID == "" {
		return errors.New("create account: empty id")
	}
	if err := codec.CheckTime(a.CreatedAt); err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	settings, err := codec.EncodeSettings(a.Settings)
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	_, err = t.tx.ExecContext(t.ctx, `INSERT INTO accounts (id, network, created_at, settings) VALUES (?, ?, ?, ?)`,
		a.ID, codec.EncodeNetwork(a.Network), codec.Nanos(a.CreatedAt), string(settings))
	if err != nil {
		return fmt.Errorf("create account %s: %w", a.ID, mapErr(err))
	}
	return nil
}

func (t *tx) SaveSettings(accountID string, s model.Settings) error {
	settings, err := codec.EncodeSettings(s)
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	res, err := t.tx.ExecContext(t.ctx, `UPDATE accounts SET settings = ? WHERE id = ?`, string(settings), accountID)
	if err != nil {
		return fmt.Errorf("save settings: %w", mapErr(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("save settings: %w", err)
	} else if n == 0 {
		return fmt.Errorf("save settings: account %s: %w", accountID, store.ErrNotFound)
	}
	return nil
}

func (t *tx) Put(accountID string, obj model.Object) error {
	r, err := codec.Encode(obj)
	if err != nil {
		return err
	}
	args := append([]any{accountID}, r.Values()...)
	if _, err := t.tx.ExecContext(t.ctx, t.stmts.put[r.Kind], args...); err != nil {
		return fmt.Errorf("put %s %s: %w", r.Kind, r.ID, mapErr(err))
	}
	return nil
}

func (t *tx) Delete(accountID string, kind model.Kind, id string) error {
	q, ok := t.stmts.delete[kind]
	if !ok {
		return fmt.Errorf("delete %s: %w", kind, codec.ErrUnknownKind)
	}
	res, err := t.tx.ExecContext(t.ctx, q, accountID, id)
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", kind, id, mapErr(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete %s %s: %w", kind, id, err)
	} else if n == 0 {
		return fmt.Errorf("delete %s %s: %w", kind, id, store.ErrNotFound)
	}
	return nil
}

const setupKeyCols = `account_id, id, key_hash, reusable, usage_limit, used_times, expires_at, revoked, last_used, data`

func (t *tx) UseSetupKey(keyHash []byte, now time.Time) (string, *model.SetupKey, error) {
	if err := codec.CheckTime(now); err != nil || now.IsZero() {
		return "", nil, fmt.Errorf("use setup key: bad time %s", now)
	}
	n := now.UnixNano()
	r := codec.Row{Kind: model.KindSetupKey}
	var accountID string
	err := t.tx.QueryRowContext(t.ctx, `UPDATE setup_keys SET used_times = used_times + 1, last_used = ?
		WHERE key_hash = ? AND revoked = 0 AND (expires_at IS NULL OR expires_at > ?)
		  AND (usage_limit = 0 OR used_times < usage_limit)
		RETURNING `+setupKeyCols, n, keyHash, n).Scan(append([]any{&accountID}, r.Targets()...)...)
	if errors.Is(err, sql.ErrNoRows) {
		err = t.tx.QueryRowContext(t.ctx, `SELECT `+setupKeyCols+` FROM setup_keys WHERE key_hash = ?`, keyHash).
			Scan(append([]any{&accountID}, r.Targets()...)...)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil, store.ErrKeyInvalid
		}
		if err != nil {
			return "", nil, fmt.Errorf("use setup key: %w", err)
		}
		if kerr := codec.KeyUseError(r, now); kerr != nil {
			return "", nil, kerr
		}
		return "", nil, store.ErrKeyInvalid
	}
	if err != nil {
		return "", nil, fmt.Errorf("use setup key: %w", mapErr(err))
	}
	obj, err := codec.Decode(r)
	if err != nil {
		return "", nil, err
	}
	return accountID, obj.(*model.SetupKey), nil
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
