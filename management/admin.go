package management

import (
	"context"
	"time"

	"petrel/management/model"
)

// AdminAPI is what the admin REST API (management/restapi) needs from the
// account service. The Service implements it. Every mutation validates its
// input (clear *Error of KindInvalid/KindNotFound/KindConflict on bad input,
// nothing changed), commits to the store, updates memory and pushes deltas
// to the affected peers' Sync streams.
//
// References to peers and groups inside objects are IDs; restapi resolves
// names to IDs (via Snapshot) before calling.
type AdminAPI interface {
	// AuthenticateToken checks an admin bearer token in constant time and
	// returns the account it belongs to.
	AuthenticateToken(token string) (accountID string, ok bool)
	// Authenticate identifies a bearer token: an admin token (owner), a
	// personal access token or an OpenID access token (its user's role).
	// Errors: KindUnauthenticated, KindPermission (blocked user),
	// KindUnavailable (identity provider unreachable).
	Authenticate(ctx context.Context, token string) (Principal, error)
	// UpdateUser changes a user's role or blocked state (blocking disables
	// their peers at once); DeleteUser removes a user, their tokens and
	// their peers. ctx carries the caller (WithPrincipal) for the
	// self-protection rules and the audit log.
	UpdateUser(ctx context.Context, accountID, userID string, up UserUpdate) (*model.User, error)
	DeleteUser(ctx context.Context, accountID, userID string) error
	// CreateAccessToken creates a user's personal access token; the plain
	// token is returned only here. RevokeAccessToken deletes one (it stops
	// working at once).
	CreateAccessToken(ctx context.Context, accountID, userID string, in AccessTokenInput) (*model.AccessToken, string, error)
	RevokeAccessToken(ctx context.Context, accountID, userID, tokenID string) error
	// ListEvents returns audit events, newest first.
	ListEvents(ctx context.Context, accountID string, f model.EventFilter) ([]model.Event, error)
	// Snapshot returns a deep copy of the account for reads.
	Snapshot(accountID string) (*model.Account, error)
	// PeerStatus reports whether a peer has a live Sync stream and when it
	// was last seen.
	PeerStatus(accountID, peerID string) (connected bool, lastSeen time.Time)
	// CreateSetupKey creates a key; the plain key is returned only here.
	CreateSetupKey(ctx context.Context, accountID string, in SetupKeyInput) (*model.SetupKey, string, error)
	// RevokeSetupKey marks a key revoked.
	RevokeSetupKey(ctx context.Context, accountID, id string) (*model.SetupKey, error)
	// Put creates (empty ID: a new ID is assigned) or replaces an object:
	// *model.Group, *model.Policy, *model.Route, *model.NameserverGroup,
	// *model.DNSZone, or *model.Peer (only Name and DNSLabel may change).
	// It returns the stored object.
	Put(ctx context.Context, accountID string, obj model.Object) (model.Object, error)
	// Delete removes an object by kind and ID (peers: also their sessions).
	Delete(ctx context.Context, accountID string, kind model.Kind, id string) error
	// UpdateSettings replaces the account settings (DNS domain, login
	// expiration: at least a minute, or 0 for never).
	UpdateSettings(ctx context.Context, accountID string, s model.Settings) error
	// CheckPolicy answers whether src may reach dst over proto/port, and by
	// which rule. src and dst are peer IDs.
	CheckPolicy(accountID, srcPeerID, dstPeerID string, proto model.Protocol, port uint16) (PolicyVerdict, error)
}

// SetupKeyInput describes a setup key to create.
type SetupKeyInput struct {
	Name       string
	Reusable   bool
	UsageLimit int           // 0 = unlimited for reusable keys; one-off keys have 1
	ExpiresIn  time.Duration // 0 = never
	AutoGroups []string      // group IDs
	Ephemeral  bool
}

// PolicyVerdict is the answer of CheckPolicy.
type PolicyVerdict struct {
	Allowed  bool
	PolicyID string // empty when no rule matched (default deny)
	RuleID   string
	Reason   string // human-readable, e.g. `rule "web" of policy "default" accepts tcp/80`
}
