package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"petrel/management/model"
	"petrel/management/store"
	"petrel/management/store/internal/codec"
)

// tx implements store.Tx on one SERIALIZABLE transaction.
type tx struct {
	ctx   context.Context
	tx    pgx.Tx
	stmts *statements
}

// guarded runs one write under a savepoint (one round trip when it
// succeeds): a constraint violation rolls back only this statement, so the
// transaction stays usable as it does on SQLite.
func (t *tx) guarded(q string, args ...any) (pgconn.CommandTag, error) {
	b := &pgx.Batch{}
	b.Queue("SAVEPOINT petrel_w")
	b.Queue(q, args...)
	b.Queue("RELEASE SAVEPOINT petrel_w")
	br := t.tx.SendBatch(t.ctx, b)
	_, err1 := br.Exec()
	tag, err2 := br.Exec()
	_, err3 := br.Exec()
	if err := br.Close(); err != nil && err1 == nil && err2 == nil && err3 == nil {
		err3 = err
	}
	if err1 != nil {
		return tag, err1
	}
	if err2 != nil {
		if _, rerr := t.tx.Exec(t.ctx, "ROLLBACK TO SAVEPOINT petrel_w"); rerr != nil {
			return tag, errors.Join(err2, fmt.Errorf("rollback to savepoint: %w", rerr))
		}
		return tag, err2
	}
	return tag, err3
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
	_, err = t.guarded(`INSERT INTO accounts (id, network, created_at, settings) VALUES ($1, $2, $3, $4)`,
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
	tag, err := t.tx.Exec(t.ctx, `UPDATE accounts SET settings = $1 WHERE id = $2`, string(settings), accountID)
	if err != nil {
		return fmt.Errorf("save settings: %w", mapErr(err))
	}
	if tag.RowsAffected() == 0 {
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
	if _, err := t.guarded(t.stmts.put[r.Kind], args...); err != nil {
		return fmt.Errorf("put %s %s: %w", r.Kind, r.ID, mapErr(err))
	}
	return nil
}

func (t *tx) Delete(accountID string, kind model.Kind, id string) error {
	q, ok := t.stmts.delete[kind]
	if !ok {
		return fmt.Errorf("delete %s: %w", kind, codec.ErrUnknownKind)
	}
	tag, err := t.tx.Exec(t.ctx, q, accountID, id)
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", kind, id, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
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
	err := t.tx.QueryRow(t.ctx, `UPDATE setup_keys SET used_times = used_times + 1, last_used = $1
		WHERE key_hash = $2 AND NOT revoked AND (expires_at IS NULL OR expires_at > $1)
		  AND (usage_limit = 0 OR used_times < usage_limit)
		RETURNING `+setupKeyCols, n, keyHash).Scan(append([]any{&accountID}, r.Targets()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		err = t.tx.QueryRow(t.ctx, `SELECT `+setupKeyCols+` FROM setup_keys WHERE key_hash = $1`, keyHash).
			Scan(append([]any{&accountID}, r.Targets()...)...)
		if errors.Is(err, pgx.ErrNoRows) {
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

// conflictFields maps our named unique constraints to field names.
var conflictFields = map[string][2]string{
	"accounts_pkey":                {"accounts", "id"},
	"peers_public_key_uniq":        {"peers", "public_key"},
	"peers_ip_uniq":                {"peers", "ip"},
	"peers_dns_label_uniq":         {"peers", "dns_label"},
	"groups_name_uniq":             {"groups", "name"},
	"setup_keys_key_hash_uniq":     {"setup_keys", "key_hash"},
	"admin_tokens_token_hash_uniq": {"admin_tokens", "token_hash"},
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
