package management

import (
	"context"
	"crypto/subtle"
	"strings"
	"time"

	"petrel/management/identity"
	"petrel/management/model"
	"petrel/management/store"
)

// accessTokenPrefix starts every personal access token.
const accessTokenPrefix = "ppat_"

// Authenticate identifies the caller of the admin API from a bearer token:
// an admin token (owner rights), a personal access token (its user's
// role), or, with an identity provider, an OpenID token issued for the
// agents' client: a JWT whose signature, issuer, audience (the client ID)
// and expiry the verifier checks — an ID token or an RFC 9068 access
// token. Opaque access tokens are refused: nothing ties them to Petrel.
// A user seen for the first time is created. Secrets
// are compared in constant time. Failures are KindUnauthenticated (or
// KindPermission for a blocked user, KindUnavailable for a provider that
// cannot be reached).
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	p, err := s.authenticate(ctx, token)
	if s.follow == nil {
		return p, err
	}
	// HA: every API call sees what any instance committed before it
	// started. A token unknown here may have been created through
	// another instance a moment ago: catch up with every account and
	// look again. A known one: catch up with its account (one indexed
	// query; a reload only when behind), so a group created through
	// another instance is there for the next call.
	if KindOf(err) == KindUnauthenticated && (strings.HasPrefix(token, adminTokenPrefix) || strings.HasPrefix(token, accessTokenPrefix)) {
		s.catchUpAll(ctx)
		p, err = s.authenticate(ctx, token)
	}
	if err == nil && s.catchUpAccount(ctx, p.AccountID) {
		// Behind: a token revoked or a role changed through another
		// instance a moment ago counts from now.
		p, err = s.authenticate(ctx, token)
	}
	return p, err
}

func (s *Service) authenticate(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, Errorf(KindUnauthenticated, "no token")
	}
	if acct, id, ok := s.adminToken(token); ok {
		return Principal{AccountID: acct, Role: model.RoleOwner, TokenID: id, Via: "admin-token"}, nil
	}
	if strings.HasPrefix(token, accessTokenPrefix) {
		return s.accessToken(token)
	}
	if strings.HasPrefix(token, adminTokenPrefix) || s.cfg.Identity == nil {
		return Principal{}, Errorf(KindUnauthenticated, "token rejected")
	}
	if strings.Count(token, ".") != 2 {
		// An opaque access token proves only that the provider issued it to
		// some application, not to Petrel: it cannot be accepted.
		return Principal{}, Errorf(KindUnauthenticated, "token rejected: OpenID tokens must be JWTs issued for client %q "+
			"(an ID token, or an RFC 9068 access token); use a personal access token otherwise", s.cfg.Identity.ClientID)
	}
	who, err := s.cfg.Identity.Verifier.Verify(ctx, token)
	if err != nil {
		return Principal{}, identityError("access token", err)
	}
	accountID, err := s.identityAccount()
	if err != nil {
		return Principal{}, err
	}
	u, err := s.ensureUser(ctx, accountID, who)
	if err != nil {
		return Principal{}, err
	}
	return Principal{AccountID: accountID, Role: u.Role, UserID: u.ID, Email: u.Email, Via: "oidc", ExpiresAt: who.Expiry}, nil
}

// adminToken finds the admin token whose hash matches, in constant time
// per token.
func (s *Service) adminToken(token string) (accountID, tokenID string, ok bool) {
	h := hashSecret(token)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for id, st := range s.accounts {
		for _, t := range st.view().acct.AdminTokens {
			if subtle.ConstantTimeCompare(h, t.TokenHash) == 1 {
				accountID, tokenID, ok = id, t.ID, true
			}
		}
	}
	return accountID, tokenID, ok
}

// accessToken checks a personal access token.
func (s *Service) accessToken(token string) (Principal, error) {
	h := hashSecret(token)
	now := s.now()
	s.mu.RLock()
	var found *model.AccessToken
	var acct *model.Account
	for _, st := range s.accounts {
		a := st.view().acct
		for _, t := range a.AccessTokens {
			if subtle.ConstantTimeCompare(h, t.TokenHash) == 1 {
				found, acct = t, a
			}
		}
	}
	s.mu.RUnlock()
	if found == nil {
		return Principal{}, Errorf(KindUnauthenticated, "access token rejected (unknown or revoked)")
	}
	return checkAccessToken(acct, found, now)
}

// checkAccessToken returns the principal of a known access token, or why
// it no longer works: expired, user deleted or blocked.
func checkAccessToken(acct *model.Account, t *model.AccessToken, now time.Time) (Principal, error) {
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return Principal{}, Errorf(KindUnauthenticated, "access token %q expired at %s", t.Name, t.ExpiresAt.Format(time.RFC3339))
	}
	u := acct.Users[t.UserID]
	if u == nil {
		return Principal{}, Errorf(KindUnauthenticated, "access token rejected: its user was deleted")
	}
	if u.Blocked {
		return Principal{}, Errorf(KindPermission, "user %s is blocked by an administrator", u.Email)
	}
	return Principal{AccountID: acct.ID, Role: u.Role, UserID: u.ID, Email: u.Email, TokenID: t.ID, Via: "access-token",
		ExpiresAt: t.ExpiresAt}, nil
}

// Recheck confirms that the credential behind an earlier Authenticate
// still works, for sessions that keep only its SHA-256 (the dashboard):
// the admin token or access token still exists with that hash (compared
// in constant time) and has not expired, and its user exists and is not
// blocked. It returns the principal with the user's current role, on the
// live account (no copy).
func (s *Service) Recheck(p Principal, tokenHash []byte) (Principal, error) {
	st, err := s.account(p.AccountID)
	if err != nil {
		return Principal{}, err
	}
	a := st.view().acct
	switch p.Via {
	case "admin-token":
		if t := a.AdminTokens[p.TokenID]; t != nil && subtle.ConstantTimeCompare(t.TokenHash, tokenHash) == 1 {
			return p, nil
		}
		return Principal{}, Errorf(KindUnauthenticated, "the admin token was revoked")
	case "access-token":
		t := a.AccessTokens[p.TokenID]
		if t == nil || subtle.ConstantTimeCompare(t.TokenHash, tokenHash) != 1 {
			return Principal{}, Errorf(KindUnauthenticated, "the access token was revoked")
		}
		return checkAccessToken(a, t, s.now())
	case ViaOIDCSession:
		return recheckUser(a, p) // websignin.go
	}
	return Principal{}, Errorf(KindUnauthenticated, "credentials of kind %q cannot be checked again; sign in again", p.Via)
}

// ensureUser returns the account's user for who, creating it on first
// sight.
func (s *Service) ensureUser(ctx context.Context, accountID string, who *identity.Identity) (*model.User, error) {
	st, err := s.account(accountID)
	if err != nil {
		return nil, err
	}
	if u := findUser(st.view().acct, who.Issuer, who.Subject); u != nil {
		if u.Blocked {
			return nil, Errorf(KindPermission, "user %s is blocked by an administrator", u.Email)
		}
		return copyUser(u), nil
	}
	var out *model.User
	err = s.mutate(ctx, accountID, "create user", func(cur *model.Account) (*mutation, error) {
		if u := findUser(cur, who.Issuer, who.Subject); u != nil {
			out = u
			return nil, nil
		}
		u, err := s.signedInUser(cur, who, s.now().UTC())
		if err != nil {
			return nil, err
		}
		u.Groups = nil // groups follow sign-ins from agents
		next := cloneAccount(cur)
		next.Users[u.ID] = u
		out = u
		return &mutation{next: next, write: func(tx store.Tx) error { return tx.Put(cur.ID, u) },
			audit: &audit{action: "user.create", kind: model.KindUser, id: u.ID, detail: u.Email, actor: "user:" + u.ID, email: u.Email}}, nil
	})
	if err != nil {
		return nil, err
	}
	return copyUser(out), nil
}

// AccessTokenInput describes a personal access token to create.
type AccessTokenInput struct {
	Name      string
	ExpiresIn time.Duration // 0 = never
}

// CreateAccessToken creates a personal access token for a user and returns
// it with the plain token, which is shown only here (only its hash is
// stored).
func (s *Service) CreateAccessToken(ctx context.Context, accountID, userID string, in AccessTokenInput) (*model.AccessToken, string, error) {
	name, err := checkName("access token", in.Name)
	if err != nil {
		return nil, "", err
	}
	if in.ExpiresIn < 0 {
		return nil, "", Errorf(KindInvalid, "expires_in must not be negative")
	}
	plain := accessTokenPrefix + randomString(32)
	now := s.now().UTC()
	t := &model.AccessToken{ID: newID(), Name: name, UserID: userID, TokenHash: hashSecret(plain),
		Prefix: plain[:len(accessTokenPrefix)+4], CreatedAt: now}
	if in.ExpiresIn > 0 {
		t.ExpiresAt = now.Add(in.ExpiresIn)
	}
	err = s.mutate(ctx, accountID, "create access token", func(cur *model.Account) (*mutation, error) {
		u := cur.Users[userID]
		if u == nil {
			return nil, Errorf(KindNotFound, "user %q not found", userID)
		}
		if err := mayMintFor(ctx, u); err != nil {
			return nil, err
		}
		if p, ok := PrincipalFrom(ctx); ok && !p.ExpiresAt.IsZero() && (t.ExpiresAt.IsZero() || t.ExpiresAt.After(p.ExpiresAt)) {
			return nil, Errorf(KindInvalid, "the token you are using expires at %s; a token made with it must expire by then (set expires_in)",
				p.ExpiresAt.UTC().Format(time.RFC3339))
		}
		n := 0
		for _, o := range cur.AccessTokens {
			if o.UserID == userID {
				n++
			}
		}
		if n >= maxAccessTokensPerUser {
			return nil, Errorf(KindPrecondition, "user %s has %d access tokens, the most allowed; revoke one first", u.Email, n)
		}
		next := cloneAccount(cur)
		next.AccessTokens[t.ID] = t
		return &mutation{next: next, write: func(tx store.Tx) error { return tx.Put(cur.ID, t) },
			audit: &audit{action: "access_token.create", kind: model.KindAccessToken, id: t.ID, detail: t.Name}}, nil
	})
	if err != nil {
		return nil, "", err
	}
	cp := *t
	cp.TokenHash = nil
	return &cp, plain, nil
}

// maxAccessTokensPerUser bounds each user's access tokens.
const maxAccessTokensPerUser = 100

// RevokeAccessToken deletes a user's access token; it stops working at
// once.
func (s *Service) RevokeAccessToken(ctx context.Context, accountID, userID, tokenID string) error {
	return s.mutate(ctx, accountID, "revoke access token", func(cur *model.Account) (*mutation, error) {
		t := cur.AccessTokens[tokenID]
		if t == nil || t.UserID != userID {
			return nil, Errorf(KindNotFound, "access token %q not found", tokenID)
		}
		if u := cur.Users[userID]; u != nil {
			if err := mayActOn(ctx, u, "revoke the access tokens of"); err != nil {
				return nil, err
			}
		}
		next := cloneAccount(cur)
		delete(next.AccessTokens, tokenID)
		return &mutation{next: next, write: func(tx store.Tx) error { return tx.Delete(cur.ID, model.KindAccessToken, tokenID) },
			audit: &audit{action: "access_token.revoke", kind: model.KindAccessToken, id: tokenID, detail: t.Name}}, nil
	})
}

// ListEvents returns the account's audit events matching f, newest first.
func (s *Service) ListEvents(ctx context.Context, accountID string, f model.EventFilter) ([]model.Event, error) {
	if _, err := s.account(accountID); err != nil {
		return nil, err
	}
	ev, err := s.cfg.Store.ListEvents(ctx, accountID, f)
	if err != nil {
		return nil, storeError("list events", err)
	}
	return ev, nil
}
