package rows

import (
	"encoding/json"
	"fmt"

	"petrel/management/model"
	"petrel/management/store"
	"petrel/management/store/internal/codec"
)

// ChangeLog collects, during one write transaction of a shared store, the
// writes of every account whose version the transaction advances, so the
// dialect can store them as that version's change-log row before it
// commits (account_changes, docs/adr-005-ha-control-plane.md). A write is
// recorded only once it succeeded. Writes to an account whose version the
// transaction does not advance (a new account's first objects) are not
// logged: the other instances load such an account whole.
type ChangeLog struct {
	accounts map[string]*logEntry
	order    []string // accounts in first-write order
}

type logEntry struct {
	version int64 // the version the transaction advanced the account to
	bumped  bool
	created bool // CreateAccount: other instances load it whole
	ops     []logOp
}

// logOp is one write as the log stores it (JSON): exactly one field set.
type logOp struct {
	Put      *logRow         `json:"put,omitempty"`
	Delete   *logRef         `json:"delete,omitempty"`
	Settings json.RawMessage `json:"settings,omitempty"`
}

type logRef struct {
	Kind model.Kind `json:"kind"`
	ID   string     `json:"id"`
}

// logRow is codec.Row with stable names; Data (a JSON document) is kept
// as JSON rather than base64.
type logRow struct {
	Kind       model.Kind      `json:"kind"`
	ID         string          `json:"id"`
	PublicKey  string          `json:"public_key,omitempty"`
	IP         string          `json:"ip,omitempty"`
	DNSLabel   string          `json:"dns_label,omitempty"`
	Name       string          `json:"name,omitempty"`
	IdPKey     string          `json:"idp_key,omitempty"`
	Hash       []byte          `json:"hash,omitempty"`
	Reusable   bool            `json:"reusable,omitempty"`
	Revoked    bool            `json:"revoked,omitempty"`
	UsageLimit int64           `json:"usage_limit,omitempty"`
	UsedTimes  int64           `json:"used_times,omitempty"`
	ExpiresAt  *int64          `json:"expires_at,omitempty"`
	LastUsed   *int64          `json:"last_used,omitempty"`
	Data       json.RawMessage `json:"data"`
}

func (l *ChangeLog) entry(accountID string) *logEntry {
	if l.accounts == nil {
		l.accounts = map[string]*logEntry{}
	}
	e := l.accounts[accountID]
	if e == nil {
		e = &logEntry{}
		l.accounts[accountID] = e
		l.order = append(l.order, accountID)
	}
	return e
}

func (l *ChangeLog) put(accountID string, r codec.Row) {
	if l == nil {
		return
	}
	e := l.entry(accountID)
	e.ops = append(e.ops, logOp{Put: &logRow{Kind: r.Kind, ID: r.ID, PublicKey: r.PublicKey, IP: r.IP,
		DNSLabel: r.DNSLabel, Name: r.Name, IdPKey: r.IdPKey, Hash: r.Hash, Reusable: r.Reusable,
		Revoked: r.Revoked, UsageLimit: r.UsageLimit, UsedTimes: r.UsedTimes, ExpiresAt: r.ExpiresAt,
		LastUsed: r.LastUsed, Data: json.RawMessage(r.Data)}})
}

func (l *ChangeLog) remove(accountID string, kind model.Kind, id string) {
	if l == nil {
		return
	}
	e := l.entry(accountID)
	e.ops = append(e.ops, logOp{Delete: &logRef{Kind: kind, ID: id}})
}

func (l *ChangeLog) settings(accountID string, doc []byte) {
	if l == nil {
		return
	}
	e := l.entry(accountID)
	e.ops = append(e.ops, logOp{Settings: json.RawMessage(doc)})
}

func (l *ChangeLog) create(accountID string) {
	if l == nil {
		return
	}
	l.entry(accountID).created = true
}

func (l *ChangeLog) bump(accountID string, version int64) {
	if l == nil {
		return
	}
	e := l.entry(accountID)
	e.version, e.bumped = version, true
}

// LogRow is one change-log row to insert.
type LogRow struct {
	AccountID string
	Version   int64
	Changes   string // JSON
}

// Rows returns the rows to insert: one per account whose version the
// transaction advanced (with its writes, possibly none). Writes to an
// account the transaction neither advanced nor created are an error: no
// other instance would ever see them.
func (l *ChangeLog) Rows() ([]LogRow, error) {
	var out []LogRow
	for _, id := range l.order {
		e := l.accounts[id]
		if !e.bumped {
			if !e.created && len(e.ops) > 0 {
				return nil, fmt.Errorf("change log: %d writes to account %s without advancing its version", len(e.ops), id)
			}
			continue
		}
		ops := e.ops
		if ops == nil {
			ops = []logOp{}
		}
		b, err := json.Marshal(ops)
		if err != nil {
			return nil, fmt.Errorf("encode change log of account %s: %w", id, err)
		}
		out = append(out, LogRow{AccountID: id, Version: e.version, Changes: string(b)})
	}
	return out, nil
}

// DecodeChange reads one stored change-log row.
func DecodeChange(version int64, changes string) (store.AccountChange, error) {
	var ops []logOp
	if err := json.Unmarshal([]byte(changes), &ops); err != nil {
		return store.AccountChange{}, fmt.Errorf("decode change log version %d: %w", version, err)
	}
	c := store.AccountChange{Version: version, Ops: make([]store.ChangeOp, 0, len(ops))}
	for i, op := range ops {
		var out store.ChangeOp
		n := 0
		if op.Put != nil {
			n++
			r := op.Put
			if isNull(r.Data) {
				return store.AccountChange{}, fmt.Errorf("decode change log version %d write %d: put without a document", version, i)
			}
			obj, err := codec.Decode(codec.Row{Kind: r.Kind, ID: r.ID, PublicKey: r.PublicKey, IP: r.IP,
				DNSLabel: r.DNSLabel, Name: r.Name, IdPKey: r.IdPKey, Hash: r.Hash, Reusable: r.Reusable,
				Revoked: r.Revoked, UsageLimit: r.UsageLimit, UsedTimes: r.UsedTimes, ExpiresAt: r.ExpiresAt,
				LastUsed: r.LastUsed, Data: []byte(r.Data)})
			if err != nil {
				return store.AccountChange{}, fmt.Errorf("decode change log version %d write %d: %w", version, i, err)
			}
			out.Put = obj
		}
		if op.Delete != nil {
			n++
			if _, ok := codec.Tables[op.Delete.Kind]; !ok || op.Delete.ID == "" {
				return store.AccountChange{}, fmt.Errorf("decode change log version %d write %d: delete of %q %q",
					version, i, op.Delete.Kind, op.Delete.ID)
			}
			out.Delete = &store.ObjectRef{Kind: op.Delete.Kind, ID: op.Delete.ID}
		}
		if op.Settings != nil {
			n++
			if isNull(op.Settings) {
				return store.AccountChange{}, fmt.Errorf("decode change log version %d write %d: null settings", version, i)
			}
			s, err := codec.DecodeSettings(op.Settings)
			if err != nil {
				return store.AccountChange{}, fmt.Errorf("decode change log version %d write %d: %w", version, i, err)
			}
			out.Settings = &s
		}
		if n != 1 {
			return store.AccountChange{}, fmt.Errorf("decode change log version %d write %d: %d operations in one write", version, i, n)
		}
		c.Ops = append(c.Ops, out)
	}
	return c, nil
}

// isNull reports an absent or JSON null document.
func isNull(doc json.RawMessage) bool {
	return len(doc) == 0 || string(doc) == "null"
}
