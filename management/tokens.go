package management

import (
	"cmp"
	"context"

	"petrel/management/model"
	"petrel/management/store"
)

// adminTokenPrefix starts every plain admin token, so a leaked token is
// recognisable in logs and secret scanners.
const adminTokenPrefix = "ptok_"

// CreateAdminToken adds an admin API token named name to the account and
// returns the plain token; only its hash is stored, so the caller must hand
// the token on now. Other tokens of the account stay valid.
//
// petrel-server uses it offline (`admin-token create`) to recover from a
// lost admin-token file: a Service started on the store with the server
// stopped (a server running meanwhile would see the token only after a
// restart, because it holds the account in memory). The dashboard's
// tokens page calls it on the running server, which uses the token at
// once.
//
// An admin token acts with owner rights, so a caller in ctx
// (WithPrincipal: the dashboard) must be an owner.
func (s *Service) CreateAdminToken(ctx context.Context, accountID, name string) (plain string, err error) {
	if err := mayManageAdminTokens(ctx, "create"); err != nil {
		return "", err
	}
	name, err = checkName("admin token", name)
	if err != nil {
		return "", err
	}
	plain = adminTokenPrefix + randomString(32)
	tok := &model.AdminToken{ID: newID(), Name: name, TokenHash: hashSecret(plain), CreatedAt: s.now().UTC()}
	err = s.mutate(ctx, accountID, "create admin token", func(cur *model.Account) (*mutation, error) {
		next := cloneAccount(cur)
		next.AdminTokens[tok.ID] = tok
		// Admin tokens are not part of any network map: no netmap change.
		return &mutation{next: next, write: func(tx store.Tx) error { return tx.Put(cur.ID, tok) },
			audit: &audit{action: "admin_token.create", kind: model.KindAdminToken, id: tok.ID, detail: tok.Name}}, nil
	})
	if err != nil {
		return "", err
	}
	return plain, nil
}

// DeleteAdminToken deletes an admin token (it stops working at once) and
// returns it. The caller in ctx, if any, must be an owner. The account's
// last admin token is kept while no owner can sign in instead (an
// unblocked user with the owner role): without either, nobody could manage
// the account until `petrel-server admin-token create` is run with the
// server stopped.
func (s *Service) DeleteAdminToken(ctx context.Context, accountID, tokenID string) (*model.AdminToken, error) {
	if err := mayManageAdminTokens(ctx, "delete"); err != nil {
		return nil, err
	}
	var out model.AdminToken
	err := s.mutate(ctx, accountID, "delete admin token", func(cur *model.Account) (*mutation, error) {
		t := cur.AdminTokens[tokenID]
		if t == nil {
			return nil, Errorf(KindNotFound, "admin token %q not found", tokenID)
		}
		if len(cur.AdminTokens) == 1 && owners(cur) == 0 {
			return nil, Errorf(KindPrecondition, "admin token %q is the account's last and no owner signs in through the identity provider: "+
				"create another admin token first", t.Name)
		}
		out = *t
		out.TokenHash = nil
		next := cloneAccount(cur)
		delete(next.AdminTokens, tokenID)
		return &mutation{next: next, write: func(tx store.Tx) error { return tx.Delete(cur.ID, model.KindAdminToken, tokenID) },
			audit: &audit{action: "admin_token.delete", kind: model.KindAdminToken, id: tokenID, detail: t.Name}}, nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// mayManageAdminTokens checks that the caller in ctx, if any, may create
// or delete admin tokens: they act with owner rights, so only an owner
// (or an admin token) may. Calls without a caller (petrel-server's
// offline admin-token command) may.
func mayManageAdminTokens(ctx context.Context, what string) error {
	p, ok := PrincipalFrom(ctx)
	if !ok || p.Role == model.RoleOwner {
		return nil
	}
	return Errorf(KindPermission, "an admin token has owner rights: only an owner can %s one (you are %s)", what, cmp.Or(string(p.Role), "no user"))
}
