package management

import (
	"context"
	"time"

	"petrel/management/model"
)

// Principal is who makes an admin API call: the bootstrap admin token
// (owner rights, no user), a user's personal access token, or a user's
// OpenID access token.
type Principal struct {
	AccountID string
	Role      model.Role
	UserID    string // "" for an admin token
	Email     string
	TokenID   string // the admin token's or access token's ID; "" for OpenID
	Via       string // "admin-token", "access-token" or "oidc"
	PeerID    string // a peer acting for itself (petrel logout); no rights
	// ExpiresAt is when the credential stops working (zero = never): an
	// access token created with it may not outlive it.
	ExpiresAt time.Time
}

// IsAdmin reports whether the principal manages the whole account.
func (p Principal) IsAdmin() bool { return p.Role.IsAdmin() }

// Actor names the principal in audit events.
func (p Principal) Actor() string {
	switch {
	case p.PeerID != "":
		return "peer:" + p.PeerID
	case p.UserID != "":
		return "user:" + p.UserID
	case p.TokenID != "":
		return "admin-token:" + p.TokenID
	}
	return "system"
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p; mutations made under it are
// recorded in the audit log with p as the actor.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// audit describes the event a mutation records.
type audit struct {
	action string // e.g. "group.create"
	kind   model.Kind
	id     string
	detail string
	// actor overrides the context's principal (agent logins act as the
	// user or the peer, not as an API caller).
	actor, email string
}

// event builds the audit event for m under ctx.
func (a *audit) event(ctx context.Context, now func() model.Event) model.Event {
	e := now()
	e.Action, e.TargetKind, e.TargetID, e.Detail = a.action, a.kind, a.id, a.detail
	e.Actor, e.ActorEmail = a.actor, a.email
	if e.Actor == "" {
		if p, ok := PrincipalFrom(ctx); ok {
			e.Actor, e.ActorEmail = p.Actor(), p.Email
		} else {
			e.Actor = "system"
		}
	}
	return e
}
