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
	// LoadAccount returns one account with all its objects, as stored now
	// (one consistent snapshot); a missing account is ErrNotFound.
	LoadAccount(ctx context.Context, id string) (*model.Account, error)
	// ServerKey returns the management server's persisted private key,
	// generating and storing one on first call (exactly once, even under
	// concurrent first calls from several processes).
	ServerKey(ctx context.Context) (keys.Private, error)
	// Update runs fn in one serialisable write transaction; if fn returns an
	// error nothing it did is kept.
	Update(ctx context.Context, fn func(Tx) error) error
	// ListEvents returns the account's audit events matching f, newest
	// first (at most f.Limit; all when 0).
	ListEvents(ctx context.Context, accountID string, f model.EventFilter) ([]model.Event, error)
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
	// AppendEvent adds an audit event to the account's log in this
	// transaction (so it is kept exactly when the change it records is).
	// The store assigns Seq; e.Seq is ignored.
	AppendEvent(accountID string, e model.Event) error
}

// Change says that an account's stored version reached Version (a commit
// of some instance, possibly this one, or the account's creation at 0).
type Change struct {
	AccountID string
	Version   int64
}

// Feed is implemented by a store shared by several petrel-servers
// (PostgreSQL opened with postgres.OpenShared, --ha): it tells an instance
// about the commits of the others. Notifications are a wake-up, not a log:
// they may be lost (while the listener reconnects) or arrive late, so the
// caller compares stored versions with its own (Versions) when told to
// resync and periodically.
type Feed interface {
	// Follow listens for commits until ctx ends and returns ctx's error.
	// It calls changed for each notification, and resync each time the
	// listener is (re)established — after LISTEN, so a commit is either
	// notified or visible to a version comparison made from resync. Both
	// callbacks run on Follow's goroutine and must not block for long.
	Follow(ctx context.Context, changed func(Change), resync func()) error
	// Versions returns every account's stored version (one query);
	// AccountVersion one account's (ErrNotFound when it does not exist).
	Versions(ctx context.Context) (map[string]int64, error)
	AccountVersion(ctx context.Context, id string) (int64, error)
	// LockAccount takes the cross-instance write lock of one account and
	// returns its stored version under the lock; unlock releases it.
	// Writers holding it never meet ErrStale from each other, and queue
	// instead of retrying in lockstep.
	LockAccount(ctx context.Context, id string) (version int64, unlock func(), err error)
	// LockCreate takes the lock that serialises account creation.
	LockCreate(ctx context.Context) (unlock func(), err error)
	// TouchSeen records that peers are connected now, on the database's
	// clock (batched, no version, no notification); SeenAges reads how
	// long ago every recorded time was.
	TouchSeen(ctx context.Context, peerIDs []string) error
	SeenAges(ctx context.Context) (map[string]time.Duration, error)
	// ClaimJob reports whether the caller runs singleton job for slot:
	// true for the first claim of a (job, slot), false for every later one.
	// The winner also prunes what the instances no longer need (old
	// claims, change-log rows older than ChangeLogKeep).
	ClaimJob(ctx context.Context, job string, slot int64, instance string) (bool, error)
	// Changes returns the account's change-log rows after version after,
	// in version order, at most limit of them (none when the log holds
	// nothing newer). The caller checks that they continue its version
	// without a gap (the log is pruned, and a row may be missing); a row
	// it cannot use means reloading the account.
	Changes(ctx context.Context, accountID string, after int64, limit int) ([]AccountChange, error)
}

// ChangeLogKeep is how long a shared store keeps change-log rows: an
// instance further behind than that reloads the whole account.
const ChangeLogKeep = 15 * time.Minute

// AccountChange is one committed version of an account as the change log
// holds it: the writes of the transaction that advanced the account to
// Version, in the order they were made.
type AccountChange struct {
	Version int64
	Ops     []ChangeOp
}

// ChangeOp is one write of a change: exactly one field is set. Put holds
// the object as stored (decoded from the row the transaction wrote);
// Delete names a removed object; Settings is the account's new settings.
type ChangeOp struct {
	Put      model.Object
	Delete   *ObjectRef
	Settings *model.Settings
}

// ObjectRef names an object of an account.
type ObjectRef struct {
	Kind model.Kind
	ID   string
}
