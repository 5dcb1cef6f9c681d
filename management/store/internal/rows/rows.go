// Package rows is the dialect-neutral half of the SQL stores: it builds the
// per-kind statements from a placeholder style, assembles accounts from
// result sets (LoadAccounts), and implements the store.Tx operations over a
// small Conn each dialect provides (statement execution, savepoints, error
// translation). The SQL text specific to a dialect stays in its package.
//
// Imported only by management/store/sqlite and management/store/postgres.
// Functions are safe for concurrent use; a Tx is confined to the goroutine
// running the Update callback, like the Conn it wraps.
package rows

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"petrel/management/model"
	"petrel/management/store"
	"petrel/management/store/internal/codec"
)

// ErrNoRows is what a Conn's QueryRow returns when the query selected no
// row (the dialect translates its driver's own sentinel to this one).
var ErrNoRows = errors.New("no rows in result set")

// Statements holds the per-kind SQL, built once at Open.
type Statements struct {
	Load    map[model.Kind]string // account_id, then codec.Columns(k)
	LoadOne map[model.Kind]string // Load of one account (parameter: account_id)
	Put     map[model.Kind]string // insert or replace by (account_id, id)
	Delete  map[model.Kind]string // by account_id, id
	// AccountOne selects one account row (parameter: id).
	AccountOne string
}

// NewStatements builds every kind's statements; placeholder returns the
// dialect's text for the n-th (1-based) parameter, e.g. "?" or "$n".
func NewStatements(placeholder func(n int) string) Statements {
	st := Statements{Load: map[model.Kind]string{}, LoadOne: map[model.Kind]string{}, Put: map[model.Kind]string{},
		Delete: map[model.Kind]string{}, AccountOne: accountsQuery + " WHERE id = " + placeholder(1)}
	for _, k := range codec.Kinds {
		table := `"` + codec.Tables[k] + `"`
		cols := codec.Columns(k)
		sel := "SELECT account_id, " + strings.Join(cols, ", ") + " FROM " + table
		st.Load[k] = sel + " ORDER BY account_id, id"
		st.LoadOne[k] = sel + " WHERE account_id = " + placeholder(1) + " ORDER BY id"
		var sets, ph []string
		for _, c := range cols[1:] {
			sets = append(sets, c+" = excluded."+c)
		}
		for i := range len(cols) + 1 {
			ph = append(ph, placeholder(i+1))
		}
		st.Put[k] = "INSERT INTO " + table + " (account_id, " + strings.Join(cols, ", ") + ") VALUES (" +
			strings.Join(ph, ", ") + ") ON CONFLICT (account_id, id) DO UPDATE SET " + strings.Join(sets, ", ")
		st.Delete[k] = "DELETE FROM " + table + " WHERE account_id = " + placeholder(1) + " AND id = " + placeholder(2)
	}
	return st
}

// Rows is the part of a driver's result set the loader uses.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// Query runs q (no arguments) inside the caller's read snapshot.
type Query func(ctx context.Context, q string) (Rows, error)

const accountsQuery = `SELECT id, network, created_at, settings, version FROM accounts`

// LoadAccounts reads every account, then every kind's objects, through
// query (which must run in one consistent snapshot), and returns the
// accounts in ID order with all maps non-nil.
func LoadAccounts(ctx context.Context, query Query, st *Statements) ([]*model.Account, error) {
	withArgs := func(ctx context.Context, q string, _ ...any) (Rows, error) { return query(ctx, q) }
	return load(ctx, withArgs, accountsQuery+" ORDER BY id", st.Load, nil)
}

// LoadAccount reads one account and its objects like LoadAccounts (query
// must run in one consistent snapshot); a missing account is
// store.ErrNotFound.
func LoadAccount(ctx context.Context, query ArgsQuery, st *Statements, id string) (*model.Account, error) {
	list, err := load(ctx, query, st.AccountOne, st.LoadOne, []any{id})
	if err != nil {
		return nil, err
	}
	if len(list) != 1 {
		return nil, fmt.Errorf("load account %s: %w", id, store.ErrNotFound)
	}
	return list[0], nil
}

// load runs accountsQ and then every kind's query from kindQ, each with
// args.
func load(ctx context.Context, query ArgsQuery, accountsQ string, kindQ map[model.Kind]string, args []any) ([]*model.Account, error) {
	rs, err := query(ctx, accountsQ, args...)
	if err != nil {
		return nil, fmt.Errorf("load accounts: %w", err)
	}
	var list []*model.Account
	byID := map[string]*model.Account{}
	for rs.Next() {
		var (
			id, network string
			created     *int64
			settings    []byte
			version     int64
		)
		if err := rs.Scan(&id, &network, &created, &settings, &version); err != nil {
			rs.Close()
			return nil, fmt.Errorf("scan account: %w", err)
		}
		a, err := codec.DecodeAccount(id, network, created, settings)
		if err != nil {
			rs.Close()
			return nil, err
		}
		a.Version = version
		list = append(list, a)
		byID[id] = a
	}
	if err := errors.Join(rs.Err(), rs.Close()); err != nil {
		return nil, fmt.Errorf("load accounts: %w", err)
	}
	if len(list) == 0 {
		return nil, nil
	}
	for _, k := range codec.Kinds {
		if err := loadKind(ctx, query, kindQ[k], args, k, byID); err != nil {
			return nil, err
		}
	}
	return list, nil
}

func loadKind(ctx context.Context, query ArgsQuery, q string, args []any, k model.Kind, byID map[string]*model.Account) error {
	rs, err := query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("load %s: %w", k, err)
	}
	defer rs.Close()
	for rs.Next() {
		var accountID string
		r := codec.Row{Kind: k}
		if err := rs.Scan(append([]any{&accountID}, r.Targets()...)...); err != nil {
			return fmt.Errorf("scan %s: %w", k, err)
		}
		obj, err := codec.Decode(r)
		if err != nil {
			return err
		}
		if a := byID[accountID]; a != nil {
			codec.AddTo(a, obj)
		}
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("load %s: %w", k, err)
	}
	return nil
}
