package management

import (
	"context"

	"petrel/management/identity"
	"petrel/management/model"
)

// ViaOIDCSession is Principal.Via of a dashboard session opened with the
// identity provider (the authorization-code flow, management/ui): no
// token stands behind it, so Recheck looks at the user instead.
const ViaOIDCSession = "oidc-session"

// SignInWithIdentity turns an identity the dashboard verified (an ID token
// from the code flow, issued to the dashboard's client) into the principal
// of a browser session, the way OpenID tokens on the REST API are: the
// user of the identity-provider account is found by issuer and subject,
// or created on first sight with the initial role (owner for
// --oidc-owner-emails, else user); groups follow agent sign-ins only.
// A blocked user is refused (KindPermission); so is an identity from
// another issuer than the server's provider (KindUnauthenticated).
func (s *Service) SignInWithIdentity(ctx context.Context, who *identity.Identity) (Principal, error) {
	ic := s.cfg.Identity
	if ic == nil {
		return Principal{}, Errorf(KindInvalid, "this server has no identity provider")
	}
	if who == nil || who.Issuer != ic.Issuer || who.Subject == "" {
		return Principal{}, Errorf(KindUnauthenticated, "the identity is not from this server's identity provider")
	}
	accountID, err := s.identityAccount()
	if err != nil {
		return Principal{}, err
	}
	s.CatchUp(ctx, accountID) // a block made through another instance counts
	u, err := s.ensureUser(ctx, accountID, who)
	if err != nil {
		return Principal{}, err
	}
	return Principal{AccountID: accountID, Role: u.Role, UserID: u.ID, Email: u.Email, Via: ViaOIDCSession}, nil
}

// recheckUser is Recheck for a ViaOIDCSession principal: its user still
// exists in the account and is not blocked; the principal gets the user's
// current role and email.
func recheckUser(a *model.Account, p Principal) (Principal, error) {
	u := a.Users[p.UserID]
	switch {
	case p.UserID == "" || u == nil:
		return Principal{}, Errorf(KindUnauthenticated, "the user of this session was deleted")
	case u.Blocked:
		return Principal{}, Errorf(KindPermission, "user %s is blocked by an administrator", u.Email)
	}
	p.Role, p.Email = u.Role, u.Email
	return p, nil
}
