package rows

import (
	"errors"
	"fmt"
	"time"

	"petrel/management/model"
	"petrel/management/store"
	"petrel/management/store/internal/codec"
)

// Conn is one dialect's open write transaction. Errors from statements come
// back already translated (constraint violations to store.ErrConflict /
// store.ErrNotFound, driver errors kept in the chain).
type Conn interface {
	// Exec runs q and reports how many rows it changed.
	Exec(q string, args ...any) (int64, error)
	// ExecGuarded runs a constraint-checked write so that a violation
	// leaves the transaction usable.
	ExecGuarded(q string, args ...any) error
	// QueryRow runs q and scans its one row into dest; no row is ErrNoRows.
	QueryRow(q string, args []any, dest ...any) error
}

// Queries is a dialect's SQL for the account and setup-key statements.
// Parameters, in order: CreateAccount (id, network, created_at, settings);
// SaveSettings (settings, id); UseKey (now nanos, key hash) returning
// SetupKeyCols; ReadKey (key hash) selecting SetupKeyCols; BumpVersion
// (id, expected version); ReadVersion (id) selecting version; AppendEvent
// (account id, then codec.EventColumns; see AppendEventSQL).
type Queries struct {
	CreateAccount string
	SaveSettings  string
	UseKey        string
	ReadKey       string
	BumpVersion   string
	ReadVersion   string
	AppendEvent   string
}

// SetupKeyCols is what UseKey returns and ReadKey selects.
const SetupKeyCols = `account_id, id, key_hash, reusable, usage_limit, used_times, expires_at, revoked, last_used, data`

// Tx implements store.Tx over a Conn.
type Tx struct {
	Conn    Conn
	Stmts   *Statements
	Queries *Queries
	// Log, when set (a shared store), records the transaction's writes
	// for the change log; the dialect stores its Rows before committing.
	Log *ChangeLog
}

var _ store.Tx = (*Tx)(nil)

// CreateAccount inserts the account row.
func (t *Tx) CreateAccount(a *model.Account) error {
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
	err = t.Conn.ExecGuarded(t.Queries.CreateAccount,
		a.ID, codec.EncodeNetwork(a.Network), codec.Nanos(a.CreatedAt), string(settings))
	if err != nil {
		return fmt.Errorf("create account %s: %w", a.ID, err)
	}
	t.Log.create(a.ID)
	return nil
}

// SaveSettings replaces an account's settings.
func (t *Tx) SaveSettings(accountID string, s model.Settings) error {
	settings, err := codec.EncodeSettings(s)
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	n, err := t.Conn.Exec(t.Queries.SaveSettings, string(settings), accountID)
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("save settings: account %s: %w", accountID, store.ErrNotFound)
	}
	t.Log.settings(accountID, settings)
	return nil
}

// Put inserts or replaces an object of the account.
func (t *Tx) Put(accountID string, obj model.Object) error {
	r, err := codec.Encode(obj)
	if err != nil {
		return err
	}
	args := append([]any{accountID}, r.Values()...)
	if err := t.Conn.ExecGuarded(t.Stmts.Put[r.Kind], args...); err != nil {
		return fmt.Errorf("put %s %s: %w", r.Kind, r.ID, err)
	}
	t.Log.put(accountID, r)
	return nil
}

// Delete removes an object; a missing one is store.ErrNotFound.
func (t *Tx) Delete(accountID string, kind model.Kind, id string) error {
	q, ok := t.Stmts.Delete[kind]
	if !ok {
		return fmt.Errorf("delete %s: %w", kind, codec.ErrUnknownKind)
	}
	n, err := t.Conn.Exec(q, accountID, id)
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", kind, id, err)
	}
	if n == 0 {
		return fmt.Errorf("delete %s %s: %w", kind, id, store.ErrNotFound)
	}
	t.Log.remove(accountID, kind, id)
	return nil
}

// UseSetupKey consumes one use of the key with one conditional UPDATE;
// when nothing changed it reads the row to say why.
func (t *Tx) UseSetupKey(keyHash []byte, now time.Time) (string, *model.SetupKey, error) {
	if err := codec.CheckTime(now); err != nil || now.IsZero() {
		return "", nil, fmt.Errorf("use setup key: bad time %s", now)
	}
	r := codec.Row{Kind: model.KindSetupKey}
	var accountID string
	err := t.Conn.QueryRow(t.Queries.UseKey, []any{now.UnixNano(), keyHash}, append([]any{&accountID}, r.Targets()...)...)
	if errors.Is(err, ErrNoRows) {
		err = t.Conn.QueryRow(t.Queries.ReadKey, []any{keyHash}, append([]any{&accountID}, r.Targets()...)...)
		if errors.Is(err, ErrNoRows) {
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
		return "", nil, fmt.Errorf("use setup key: %w", err)
	}
	obj, err := codec.Decode(r)
	if err != nil {
		return "", nil, err
	}
	t.Log.put(accountID, r) // the key's new use count, as stored
	return accountID, obj.(*model.SetupKey), nil
}

// BumpVersion increments the account's version if it is still expected;
// otherwise it reads the row to return store.ErrStale or store.ErrNotFound.
func (t *Tx) BumpVersion(accountID string, expected int64) error {
	n, err := t.Conn.Exec(t.Queries.BumpVersion, accountID, expected)
	if err != nil {
		return fmt.Errorf("check account %s version: %w", accountID, err)
	}
	if n == 1 {
		t.Log.bump(accountID, expected+1)
		return nil
	}
	var stored int64
	err = t.Conn.QueryRow(t.Queries.ReadVersion, []any{accountID}, &stored)
	if errors.Is(err, ErrNoRows) {
		return fmt.Errorf("check account %s version: %w", accountID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("check account %s version: %w", accountID, err)
	}
	return fmt.Errorf("account %s was changed in the store by another writer (stored version %d, this copy %d): %w",
		accountID, stored, expected, store.ErrStale)
}

// AppendEvent inserts an audit event; the database assigns its seq. A
// missing account is store.ErrNotFound.
func (t *Tx) AppendEvent(accountID string, e model.Event) error {
	r, err := codec.EncodeEvent(e)
	if err != nil {
		return err
	}
	if err := t.Conn.ExecGuarded(t.Queries.AppendEvent, append([]any{accountID}, r.Values()...)...); err != nil {
		return fmt.Errorf("append event %s: %w", e.Action, err)
	}
	return nil
}
