package management

import (
	"context"
	"time"

	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/management/store"
)

// loginAllowed reports why peer p may not log in or sync without its user
// signing in again: its user is blocked or gone, or its login expired.
// Setup-key peers (no user) are always allowed.
func loginAllowed(a *model.Account, p *model.Peer, now time.Time) error {
	if p.UserID == "" {
		return nil
	}
	u := a.Users[p.UserID]
	switch {
	case u == nil:
		return Errorf(KindPermission, "the user of this peer was deleted; sign in again")
	case u.Blocked:
		return Errorf(KindPermission, "user %s is blocked by an administrator", u.Email)
	case LoginExpired(a.Settings, p, now):
		return Errorf(KindPermission, "login expired: sign in again with `petrel login`")
	}
	return nil
}

// LoginExpired reports whether a user peer's login is older than the
// account's login expiration.
func LoginExpired(set model.Settings, p *model.Peer, now time.Time) bool {
	return p.UserID != "" && set.LoginExpiration > 0 && !p.LastLogin.IsZero() && now.Sub(p.LastLogin) >= set.LoginExpiration
}

// expireLogins disables the user peers whose login expired (they leave
// every network map and their Sync streams end with needs-login); the
// janitor calls it.
func (s *Service) expireLogins() {
	now := s.now()
	for _, id := range s.Accounts() {
		st, err := s.account(id)
		if err != nil {
			continue
		}
		a := st.view().acct
		if a.Settings.LoginExpiration <= 0 {
			continue
		}
		var due []string
		for _, p := range a.Peers {
			if !p.Disabled && LoginExpired(a.Settings, p, now) {
				due = append(due, p.ID)
			}
		}
		if len(due) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = s.setPeersDisabled(ctx, id, due, "login expired: sign in again with `petrel login`", "peer.login_expired",
			func(cur *model.Account, p *model.Peer) bool { return LoginExpired(cur.Settings, p, s.now()) })
		cancel()
		if err != nil {
			s.log.Warn("expire logins", "account", id, "err", err)
			continue
		}
		s.log.Info("peer logins expired", "account", id, "peers", len(due))
	}
}

// setPeersDisabled marks peers disabled (cause non-empty: their streams end
// with cause, a needs-login error) or enabled again (cause empty), those
// for which still holds on the current account (the list was made before
// the account lock: a peer may have signed in since). Each peer changed is
// an audit event action (none when "").
func (s *Service) setPeersDisabled(ctx context.Context, accountID string, peerIDs []string, cause, action string,
	still func(cur *model.Account, p *model.Peer) bool) error {
	disable := cause != ""
	return s.mutate(ctx, accountID, "disable peers", func(cur *model.Account) (*mutation, error) {
		next := cloneAccount(cur)
		var changed []*model.Peer
		for _, id := range peerIDs {
			old := cur.Peers[id]
			if old == nil || old.Disabled == disable || !still(cur, old) {
				continue
			}
			p := *old
			p.Disabled = disable
			next.Peers[id] = &p
			changed = append(changed, &p)
		}
		if len(changed) == 0 {
			return nil, nil
		}
		ids := make([]string, len(changed))
		for i, p := range changed {
			ids[i] = p.ID
		}
		m := &mutation{
			next: next, change: netmap.Change{PeersChanged: ids},
			write: func(tx store.Tx) error {
				now := s.now().UTC()
				for _, p := range changed {
					if err := tx.Put(cur.ID, p); err != nil {
						return err
					}
					if action == "" {
						continue
					}
					if err := tx.AppendEvent(cur.ID, model.Event{At: now, Actor: "system", Action: action,
						TargetKind: model.KindPeer, TargetID: p.ID, Detail: p.Name}); err != nil {
						return err
					}
				}
				return nil
			},
			after: func() {
				if disable {
					for _, id := range ids {
						s.hub.forget(id, Errorf(KindPermission, "%s", cause))
					}
				}
			},
		}
		return m, nil
	})
}
