package management

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"petrel/internal/keys"
	"petrel/management/identity"
	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/management/store"
	"petrel/proto/managementpb"
)

// verifyLoginToken checks the ID token an agent sent in LoginRequest.jwt
// and binds it to the agent's key (signIns): a token is good for one
// machine.
func (s *Service) verifyLoginToken(ctx context.Context, raw string, peer keys.Public) (*identity.Identity, error) {
	if s.cfg.Identity == nil {
		return nil, Errorf(KindInvalid, "this server has no identity provider: log in with a setup key")
	}
	id, err := s.cfg.Identity.Verifier.Verify(ctx, raw)
	if err != nil {
		s.signInFailed(sourceOf(ctx), peer, err)
		return nil, identityError("sign-in token", err)
	}
	exp := id.Expiry
	if exp.IsZero() {
		exp = s.now().Add(time.Hour)
	}
	if err := s.signInTokens.claim(raw, peer, exp.Add(time.Minute), s.now()); err != nil {
		s.signInFailed(sourceOf(ctx), peer, err)
		return nil, err
	}
	return id, nil
}

// userLogin registers (ref zero) or re-authenticates (ref set) the peer
// with peerKey as a peer of the signed-in user who: the user is created
// on first sight, their IdP groups are synced, and all their peers follow
// the groups.
func (s *Service) userLogin(ctx context.Context, ref peerRef, peerKey keys.Public, req *managementpb.LoginRequest, who *identity.Identity) (*managementpb.LoginResponse, error) {
	accountID, err := s.identityAccount()
	if err != nil {
		return nil, err
	}
	if ref.accountID != "" && ref.accountID != accountID {
		return nil, Errorf(KindPermission, "this machine is registered in another account; run `petrel logout` first")
	}
	now := s.now().UTC()
	var peer *model.Peer
	var acct *model.Account
	var user *model.User
	registered := ref.peerID == ""
	err = s.mutate(ctx, accountID, "user login", func(cur *model.Account) (*mutation, error) {
		u, err := s.signedInUser(cur, who, now)
		if err != nil {
			return nil, err
		}
		next := cloneAccount(cur)
		ch := netmap.Change{}
		var p *model.Peer
		if registered {
			if _, ok := s.lookupKey(peerKey); ok {
				return nil, errRegisteredMeanwhile
			}
			if p, err = newPeer(cur, peerKey, req, now); err != nil {
				return nil, err
			}
			ch.PeersAdded = []string{p.ID}
		} else {
			old := cur.Peers[ref.peerID]
			if old == nil {
				return nil, Errorf(KindUnauthenticated, "peer was removed; log in again")
			}
			if old.UserID != "" && old.UserID != u.ID {
				return nil, Errorf(KindPermission, "this machine is registered to another user; run `petrel logout` first")
			}
			cp := *old
			if m := req.GetMeta(); m != nil {
				cp.Meta = metaFrom(m, req.GetHostname())
			}
			p = &cp
			ch.PeersChanged = []string{p.ID}
		}
		p.UserID, p.LastLogin, p.LastSeen, p.Disabled = u.ID, now, now, false
		next.Peers[p.ID] = p
		next.Users[u.ID] = u
		groups, created := syncUserGroups(next, u, who.Groups, s.log)
		for _, g := range groups {
			ch.Groups = append(ch.Groups, g.ID)
		}
		peer, acct, user = p, next, u
		action := "user.login"
		if registered {
			action = "peer.register"
		}
		return &mutation{
			next: next, change: ch,
			write: func(tx store.Tx) error {
				if err := tx.Put(cur.ID, u); err != nil {
					return err
				}
				if err := tx.Put(cur.ID, p); err != nil {
					return err
				}
				for _, g := range groups {
					if err := tx.Put(cur.ID, g); err != nil {
						return err
					}
				}
				for _, g := range groups {
					action, detail := "group.members", g.Name+": members follow "+u.Email+"'s groups at the identity provider"
					if slices.ContainsFunc(created, func(c *model.Group) bool { return c.ID == g.ID }) {
						action, detail = "group.create", g.Name+" (from the identity provider)"
					}
					if err := tx.AppendEvent(cur.ID, model.Event{At: now, Actor: "user:" + u.ID, ActorEmail: u.Email,
						Action: action, TargetKind: model.KindGroup, TargetID: g.ID, Detail: detail}); err != nil {
						return err
					}
				}
				return nil
			},
			audit: &audit{action: action, kind: model.KindPeer, id: p.ID, detail: p.Name, actor: "user:" + u.ID, email: u.Email},
			after: func() {
				if registered {
					s.mu.Lock()
					s.byKey[peerKey] = peerRef{cur.ID, p.ID}
					s.mu.Unlock()
				}
			},
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.hub.seen(peer.ID, now)
	s.log.Info("user signed in", "account", accountID, "user", user.ID, "peer", peer.ID, "registered", registered, "groups", len(user.Groups))
	return &managementpb.LoginResponse{PeerConfig: peerConfig(acct, peer), ServerConfig: s.serverConfig(peerKey)}, nil
}

// signedInUser returns the account's user for who, updated for this login
// (a new copy; cur is not changed), or why they may not sign in.
func (s *Service) signedInUser(cur *model.Account, who *identity.Identity, now time.Time) (*model.User, error) {
	var u model.User
	if old := findUser(cur, who.Issuer, who.Subject); old != nil {
		if old.Blocked {
			return nil, Errorf(KindPermission, "user %s is blocked by an administrator", old.Email)
		}
		u = *old
		u.Groups = slices.Clone(old.Groups)
	} else {
		u = model.User{ID: newID(), Issuer: who.Issuer, Subject: who.Subject, Role: s.initialRole(who), CreatedAt: now}
	}
	u.Email, u.Name, u.LastLogin = who.Email, who.Name, now
	return &u, nil
}

// syncUserGroups maps the provider's group names to the IdP-managed groups
// of next (creating the missing ones; a name taken by an admin's group, or
// "All", is ignored with a warning), sets u.Groups to them
// and makes every peer of u a member of exactly those among the groups the
// provider manages for u: it joins the new ones and leaves the ones the
// provider no longer lists. It returns the groups it changed or created
// (already in next) and, of those, the created ones.
func syncUserGroups(next *model.Account, u *model.User, names []string, log interface{ Warn(string, ...any) }) (changed, created []*model.Group) {
	// Names are unique ignoring case (as for groups made through the API).
	byName := make(map[string]*model.Group, len(next.Groups))
	for _, g := range next.Groups {
		byName[strings.ToLower(g.Name)] = g
	}
	var want []string
	for _, raw := range names {
		name, err := checkName("group", raw)
		if err == nil && strings.EqualFold(name, model.AllGroupName) {
			err = errors.New("the name of the implicit group of every peer")
		}
		g := byName[strings.ToLower(name)]
		if err == nil && g != nil && !g.IdPManaged {
			// An admin's group: the provider must not decide who is in it.
			err = errors.New("a group of that name was made by an admin, not by the identity provider")
		}
		if err != nil {
			log.Warn("ignoring a group from the identity provider", "group", raw, "err", err)
			continue
		}
		if g == nil {
			g = &model.Group{ID: newID(), Name: name, IdPManaged: true}
			next.Groups[g.ID] = g
			byName[strings.ToLower(name)] = g
			created = append(created, g)
		}
		if !slices.Contains(want, g.ID) {
			want = append(want, g.ID)
		}
	}
	slices.Sort(want)
	old := u.Groups
	u.Groups = want
	var peers []string
	for _, p := range next.Peers {
		if p.UserID == u.ID {
			peers = append(peers, p.ID)
		}
	}
	slices.Sort(peers)
	touched := map[string]bool{}
	for _, g := range created {
		touched[g.ID] = true
	}
	apply := func(gid string, member bool) {
		g := next.Groups[gid]
		if g == nil {
			return // deleted by an admin since
		}
		ng := g
		for _, pid := range peers {
			switch has := slices.Contains(ng.PeerIDs, pid); {
			case member && !has:
				ng = withPeer(ng, pid)
			case !member && has:
				ng = withoutPeer(ng, pid)
			}
		}
		if ng != g || touched[gid] {
			next.Groups[gid] = ng
			touched[gid] = true
		}
	}
	for _, gid := range want {
		apply(gid, true)
	}
	for _, gid := range old {
		if !slices.Contains(want, gid) {
			apply(gid, false)
		}
	}
	for gid := range touched {
		changed = append(changed, next.Groups[gid])
	}
	slices.SortFunc(changed, func(a, b *model.Group) int { return strings.Compare(a.ID, b.ID) })
	for i, g := range created { // the created entries were replaced by their final copies
		created[i] = next.Groups[g.ID]
	}
	return changed, created
}

// newPeer builds a new peer for peerKey from a login request: the first
// free address and a free DNS label from the hostname.
func newPeer(cur *model.Account, peerKey keys.Public, req *managementpb.LoginRequest, now time.Time) (*model.Peer, error) {
	ip, err := allocateIP(cur)
	if err != nil {
		return nil, err
	}
	hostname := req.GetHostname()
	if hostname == "" {
		hostname = req.GetMeta().GetHostname()
	}
	return &model.Peer{
		ID:        newID(),
		Name:      displayName(hostname),
		DNSLabel:  allocateLabel(cur, append(append([]string(nil), req.GetDnsLabels()...), hostname)),
		PublicKey: peerKey.String(),
		IP:        ip,
		Meta:      metaFrom(req.GetMeta(), hostname),
		CreatedAt: now,
		LastSeen:  now,
	}, nil
}

// PrecheckSignIn refuses, before anything is remembered about the caller,
// a sign-in token on a server without an identity provider, one that is not
// shaped like a compact JWS (the signature is checked in Login), and any
// from a source that sent too many bad ones (signInFailed).
func (s *Service) PrecheckSignIn(ctx context.Context, raw string) error {
	if s.cfg.Identity == nil {
		return Errorf(KindInvalid, "this server has no identity provider: log in with a setup key")
	}
	if src := sourceOf(ctx); src.IsValid() {
		if ok, wait := s.limits.fails.Check(limitKey(src)); !ok {
			return limited(fmt.Sprintf("too many refused sign-ins or setup keys from %s", src), wait)
		}
	}
	if len(raw) > identity.MaxTokenBytes || strings.Count(raw, ".") != 2 {
		return Errorf(KindUnauthenticated, "sign-in token refused: not a compact JWS")
	}
	return nil
}
