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
	"petrel/management/store/internal/codec"
)

// ErrNoRows is what a Conn's QueryRow returns when the query selected no
// row (the dialect translates its driver's own sentinel to this one).
var ErrNoRows = errors.New("no rows in result set")

// Statements holds the per-kind SQL, built once at Open.
type Statements struct {
	Load   map[model.Kind]string // account_id, then codec.Columns(k)
	Put    map[model.Kind]string // insert or replace by (account_id, id)
	Delete map[model.Kind]string // by account_id, id
}

// NewStatements builds every kind's statements; placeholder returns the
// dialect's text for the n-th (1-based) parameter, e.g. "?" or "$n".
func NewStatements(placeholder func(n int) string) Statements {
	st := Statements{Load: map[model.Kind]string{}, Put: map[model.Kind]string{}, Delete: map[model.Kind]string{}}
	for _, k := range codec.Kinds {
		table := `"` + codec.Tables[k] + `"`
		cols := codec.Columns(k)
		st.Load[k] = "SELECT account_id, " + strings.Join(cols, ", ") + " FROM " + table + " ORDER BY account_id, id"
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

// LoadAccounts reads every account, then every kind's objects, through
// query (which must run in one consistent snapshot), and returns the
// accounts in ID order with all maps non-nil.
func LoadAccounts(ctx context.Context, query Query, st *Statements) ([]*model.Account, error) {
	rs, err := query(ctx, `SELECT id, network, created_at, settings, version FROM accounts ORDER BY id`)
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
	for _, k := range codec.Kinds {
		if err := loadKind(ctx, query, st.Load[k], k, byID); err != nil {
			return nil, err
		}
	}
	return list, nil
}

func loadKind(ctx context.Context, query Query, q string, k model.Kind, byID map[string]*model.Account) error {
	rs, err := query(ctx, q)
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
