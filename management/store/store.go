// Package store defines the management service's persistence interface and
// opens one of its implementations: SQLite (store/sqlite, the embedded
// default) or PostgreSQL (store/postgres). The store is the source of truth
// for durability; the management service keeps account state in memory and
// writes every mutation through Update before changing memory.
//
// Imported by management and cmd/petrel-server (never by the agent).
// Implementations are safe for concurrent use.
package store

import (
	"context"
	"errors"
	"time"

	"petrel/internal/keys"
	"petrel/management/model"
)

// Sentinel errors callers branch on (wrapped with detail by implementations).
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict") // unique constraint (public key, IP, DNS label, name)
	ErrSchemaNewer  = errors.New("database schema is newer than this binary")
	ErrKeyInvalid   = errors.New("setup key invalid") // unknown
	ErrKeyRevoked   = errors.New("setup key revoked")
	ErrKeyExpired   = errors.New("setup key expired")
	ErrKeyExhausted = errors.New("setup key usage limit reached")
	// ErrLocked: another petrel-server (or another Store in this process)
	// holds the database. One writer per store: Open refuses a second one.
	ErrLocked = errors.New("store locked: one petrel-server per store")
	// ErrStale: the account changed in the store since the caller loaded it
	// (its version moved on); the caller's in-memory copy must not be written.
	ErrStale = errors.New("stale account version")
)

// Store persists accounts. Keep it narrow: the in-memory account state is
// the read path, so the store only needs a full load and transactional writes.
type Store interface {
	// LoadAccounts returns every account with all its objects.
	LoadAccounts(ctx context.Context) ([]*model.Account, error)
	// ServerKey returns the management server's persisted private key,
	// generating and storing one on first call (exactly once, even under
	// concurrent first calls from several processes).
	ServerKey(ctx context.Context) (keys.Private, error)
	// Update runs fn in one serialisable write transaction; if fn returns an
	// error nothing it did is kept.
	Update(ctx context.Context, fn func(Tx) error) error
	// SchemaVersion reports the migration version the database is at.
	SchemaVersion(ctx context.Context) (int, error)
	// Close releases the database (and its single-writer lock).
	Close() error
}

// Tx is the write side of one transaction.
type Tx interface {
	// CreateAccount inserts an account row (network, settings, created time).
	// Objects in the account's maps are not written; Put them.
	CreateAccount(a *model.Account) error
	// SaveSettings replaces an account's settings.
	SaveSettings(accountID string, s model.Settings) error
	// Put inserts or replaces an object of the account. Unique violations
	// (peer public key, peer IP, peer DNS label, group name) are ErrConflict.
	Put(accountID string, obj model.Object) error
	// Delete removes an object; a missing object is ErrNotFound.
	Delete(accountID string, kind model.Kind, id string) error
	// UseSetupKey atomically checks and consumes one use of the setup key
	// whose hash is keyHash: it fails with ErrKeyInvalid, ErrKeyRevoked,
	// ErrKeyExpired or ErrKeyExhausted without changing anything, or
	// increments the use count, sets LastUsed and returns the updated key and
	// its account ID. Two concurrent uses of a one-off key: exactly one wins.
	UseSetupKey(keyHash []byte, now time.Time) (accountID string, key *model.SetupKey, err error)
	// BumpVersion checks that the account's stored version is expected (the
	// model.Account.Version the caller's change is based on) and increments
	// it. A different stored version is ErrStale (and fn should return it so
	// nothing is written); a missing account is ErrNotFound.
	BumpVersion(accountID string, expected int64) error
}
