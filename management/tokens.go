package management

import (
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
// stopped. A running server sees the token only after a restart, because
// it holds the account in memory.
func (s *Service) CreateAdminToken(ctx context.Context, accountID, name string) (plain string, err error) {
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
