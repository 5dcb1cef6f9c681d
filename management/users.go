package management

import (
	"context"
	"slices"

	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/management/store"
)

// UserUpdate changes a user; nil fields keep their value.
type UserUpdate struct {
	Role    *model.Role
	Blocked *bool
}

// UpdateUser changes a user's role or blocks/unblocks them. Blocking
// disables all their peers at once: they leave every network map and
// their Sync streams end with needs-login. The account keeps at least one
// owner, and nobody changes their own role or blocks themselves.
func (s *Service) UpdateUser(ctx context.Context, accountID, userID string, up UserUpdate) (*model.User, error) {
	if up.Role != nil {
		switch *up.Role {
		case model.RoleOwner, model.RoleAdmin, model.RoleUser:
		default:
			return nil, Errorf(KindInvalid, "role %q: want owner, admin or user", *up.Role)
		}
	}
	caller, _ := PrincipalFrom(ctx)
	var out *model.User
	err := s.mutate(ctx, accountID, "update user", func(cur *model.Account) (*mutation, error) {
		old := cur.Users[userID]
		if old == nil {
			return nil, Errorf(KindNotFound, "user %q not found", userID)
		}
		if err := mayActOn(ctx, old, "change"); err != nil {
			return nil, err
		}
		u := *old
		u.Groups = slices.Clone(old.Groups)
		if up.Role != nil {
			if caller.UserID == userID && *up.Role != old.Role {
				return nil, Errorf(KindPermission, "you cannot change your own role")
			}
			if *up.Role == model.RoleOwner && caller.UserID != "" && caller.Role != model.RoleOwner {
				return nil, Errorf(KindPermission, "only an owner can make someone an owner")
			}
			u.Role = *up.Role
		}
		if up.Blocked != nil {
			if caller.UserID == userID && *up.Blocked {
				return nil, Errorf(KindPermission, "you cannot block yourself")
			}
			u.Blocked = *up.Blocked
		}
		if old.Role == model.RoleOwner && !old.Blocked && (u.Role != model.RoleOwner || u.Blocked) && owners(cur) == 1 {
			return nil, Errorf(KindPrecondition, "user %s is the account's last owner; make someone else owner first", old.Email)
		}
		if u.Role == old.Role && u.Blocked == old.Blocked {
			out = old
			return nil, nil
		}
		next := cloneAccount(cur)
		next.Users[u.ID] = &u
		out = &u
		// Blocking disables the user's peers; unblocking enables them again
		// (unless their login expired meanwhile).
		var peers []*model.Peer
		if u.Blocked != old.Blocked {
			now := s.now()
			for _, p := range sortedByID(cur.Peers) {
				if p.UserID != u.ID {
					continue
				}
				disabled := u.Blocked || LoginExpired(cur.Settings, p, now)
				if p.Disabled != disabled {
					cp := *p
					cp.Disabled = disabled
					next.Peers[cp.ID] = &cp
					peers = append(peers, &cp)
				}
			}
		}
		ch := netmap.Change{}
		for _, p := range peers {
			ch.PeersChanged = append(ch.PeersChanged, p.ID)
		}
		action := "user.update"
		switch {
		case u.Blocked && !old.Blocked:
			action = "user.block"
		case !u.Blocked && old.Blocked:
			action = "user.unblock"
		}
		return &mutation{
			next: next, change: ch,
			write: func(tx store.Tx) error {
				for _, p := range peers {
					if err := tx.Put(cur.ID, p); err != nil {
						return err
					}
				}
				return tx.Put(cur.ID, &u)
			},
			audit: &audit{action: action, kind: model.KindUser, id: u.ID, detail: u.Email},
			after: func() {
				for _, p := range peers {
					if p.Disabled {
						s.hub.forget(p.ID, Errorf(KindPermission, "user %s is blocked by an administrator", u.Email))
					}
				}
			},
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return copyUser(out), nil
}

// DeleteUser removes a user with their access tokens and their peers (whose
// streams end at once). The last owner cannot be deleted, nor can callers
// delete themselves.
func (s *Service) DeleteUser(ctx context.Context, accountID, userID string) error {
	caller, _ := PrincipalFrom(ctx)
	if caller.UserID == userID {
		return Errorf(KindPermission, "you cannot delete yourself")
	}
	var peers []string
	err := s.mutate(ctx, accountID, "delete user", func(cur *model.Account) (*mutation, error) {
		u := cur.Users[userID]
		if u == nil {
			return nil, Errorf(KindNotFound, "user %q not found", userID)
		}
		if err := mayActOn(ctx, u, "delete"); err != nil {
			return nil, err
		}
		if u.Role == model.RoleOwner && !u.Blocked && owners(cur) == 1 {
			return nil, Errorf(KindPrecondition, "user %s is the account's last owner; make someone else owner first", u.Email)
		}
		next := cloneAccount(cur)
		delete(next.Users, userID)
		var tokens []string
		for _, t := range sortedByID(cur.AccessTokens) {
			if t.UserID == userID {
				tokens = append(tokens, t.ID)
				delete(next.AccessTokens, t.ID)
			}
		}
		// The peers are disabled here and deleted right after, so they
		// leave the maps in this commit even if the deletion fails.
		peers = peers[:0]
		var disabled []*model.Peer
		for _, p := range sortedByID(cur.Peers) {
			if p.UserID == userID {
				peers = append(peers, p.ID)
				cp := *p
				cp.Disabled = true
				next.Peers[cp.ID] = &cp
				disabled = append(disabled, &cp)
			}
		}
		return &mutation{
			next: next, change: netmap.Change{PeersChanged: slices.Clone(peers)},
			write: func(tx store.Tx) error {
				for _, id := range tokens {
					if err := tx.Delete(cur.ID, model.KindAccessToken, id); err != nil {
						return err
					}
				}
				for _, p := range disabled {
					if err := tx.Put(cur.ID, p); err != nil {
						return err
					}
				}
				return tx.Delete(cur.ID, model.KindUser, userID)
			},
			audit: &audit{action: "user.delete", kind: model.KindUser, id: userID, detail: u.Email},
			after: func() {
				for _, id := range peers {
					s.hub.forget(id, Errorf(KindPermission, "the user of this peer was deleted"))
				}
			},
		}, nil
	})
	if err != nil {
		return err
	}
	for _, id := range peers {
		if err := s.deletePeer(ctx, accountID, id, false); err != nil && KindOf(err) != KindNotFound {
			return err
		}
	}
	return nil
}

// roleRank orders roles: owner above admin above user.
func roleRank(r model.Role) int {
	switch r {
	case model.RoleOwner:
		return 3
	case model.RoleAdmin:
		return 2
	case model.RoleUser:
		return 1
	}
	return 0
}

// mayActOn checks that the caller in ctx (if any: internal calls have
// none) may act on target: themself, or a user whose role is not above
// theirs, so that an admin cannot block, delete or mint tokens for an
// owner. An admin token has owner rights.
func mayActOn(ctx context.Context, target *model.User, what string) error {
	p, ok := PrincipalFrom(ctx)
	if !ok || p.UserID == target.ID {
		return nil
	}
	if !p.IsAdmin() || roleRank(p.Role) < roleRank(target.Role) {
		return Errorf(KindPermission, "you (%s) cannot %s %s (%s)", p.Role, what, target.Email, target.Role)
	}
	return nil
}

// mayMintFor checks that the caller in ctx may create an access token for
// target, which acts with target's rights: for themself, or (admins) for a
// user of a strictly lower role — an admin cannot get an owner's or another
// admin's rights, and so act in their name in the audit log. The admin
// token (owner rights, no user) may mint for anyone.
func mayMintFor(ctx context.Context, target *model.User) error {
	p, ok := PrincipalFrom(ctx)
	if !ok || p.UserID == target.ID || (p.UserID == "" && p.IsAdmin()) {
		return nil
	}
	if !p.IsAdmin() || roleRank(p.Role) <= roleRank(target.Role) {
		return Errorf(KindPermission, "an access token acts with its user's rights: you (%s) cannot create one for %s (%s)",
			p.Role, target.Email, target.Role)
	}
	return nil
}

// owners counts the account's active (unblocked) owners.
func owners(a *model.Account) int {
	n := 0
	for _, u := range a.Users {
		if u.Role == model.RoleOwner && !u.Blocked {
			n++
		}
	}
	return n
}

func copyUser(u *model.User) *model.User {
	cp := *u
	cp.Groups = slices.Clone(u.Groups)
	return &cp
}
