package management

import (
	"context"
	"errors"
	"slices"
	"strings"

	"petrel/management/identity"
	"petrel/management/model"
	"petrel/proto/managementpb"
)

// TokenVerifier checks an identity provider's tokens; *identity.Verifier
// implements it.
type TokenVerifier interface {
	// Verify checks an ID token (signature, issuer, audience, expiry,
	// nonce) and returns whom it names.
	Verify(ctx context.Context, rawIDToken string, opts ...identity.VerifyOption) (*identity.Identity, error)
}

// IdentityConfig turns on sign-in through an OpenID provider: people log
// agents in with the device flow, and their tokens work on the REST API.
type IdentityConfig struct {
	Verifier TokenVerifier
	// Issuer, ClientID and Scopes are told to agents (ServerKey) so that
	// they can run the device flow against the provider.
	Issuer   string
	ClientID string
	Scopes   []string
	// AccountID is the account users join; "" is the server's first
	// account.
	AccountID string
	// OwnerEmails get the owner role when their user is created, if the
	// provider says the email is verified. Everyone else starts as a user.
	OwnerEmails []string
}

// identityAccount returns the account signed-in users belong to.
func (s *Service) identityAccount() (string, error) {
	ic := s.cfg.Identity
	if ic.AccountID != "" {
		if _, err := s.account(ic.AccountID); err != nil {
			return "", err
		}
		return ic.AccountID, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	best := ""
	var bestAcct *model.Account
	for id, st := range s.accounts {
		a := st.view().acct
		if bestAcct == nil || a.CreatedAt.Before(bestAcct.CreatedAt) || (a.CreatedAt.Equal(bestAcct.CreatedAt) && id < best) {
			best, bestAcct = id, a
		}
	}
	if best == "" {
		return "", Errorf(KindUnavailable, "no account yet")
	}
	return best, nil
}

// identityError maps a verifier error to the control plane's typed error.
func identityError(what string, err error) error {
	switch {
	case errors.Is(err, identity.ErrUnavailable):
		return &Error{Kind: KindUnavailable, Msg: what + ": the identity provider is unavailable", Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: KindUnavailable, Msg: what, Err: err}
	}
	return &Error{Kind: KindUnauthenticated, Msg: what + " refused", Err: err}
}

// initialRole is the role of a user created from id.
func (s *Service) initialRole(id *identity.Identity) model.Role {
	if id.Email != "" && id.EmailVerified && slices.ContainsFunc(s.cfg.Identity.OwnerEmails, func(e string) bool {
		return strings.EqualFold(strings.TrimSpace(e), id.Email)
	}) {
		return model.RoleOwner
	}
	return model.RoleUser
}

// findUser returns the account's user with the identity's issuer and
// subject, or nil.
func findUser(a *model.Account, issuer, subject string) *model.User {
	for _, u := range a.Users {
		if u.Issuer == issuer && u.Subject == subject {
			return u
		}
	}
	return nil
}

// SignIn is what agents need to run the device flow against the server's
// identity provider, or nil when the server has none.
func (s *Service) SignIn() *managementpb.SignIn {
	ic := s.cfg.Identity
	if ic == nil {
		return nil
	}
	return &managementpb.SignIn{Issuer: ic.Issuer, ClientId: ic.ClientID, Scopes: slices.Clone(ic.Scopes)}
}
