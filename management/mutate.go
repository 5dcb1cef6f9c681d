package management

import (
	"context"
	"errors"
	"maps"
	"time"

	"petrel/internal/backoff"
	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/management/store"
)

// mutation is what a mutation function computes from the current account:
// the next account (a copy-on-write clone), what changed for netmap, the
// store writes, and optional work to do after the swap.
type mutation struct {
	next   *model.Account
	change netmap.Change
	write  func(tx store.Tx) error
	// after runs under the account lock once the new view is in place.
	after func()
	// audit, when set, is recorded in the audit log in the same
	// transaction as write.
	audit *audit
}

// mutate runs one mutation of an account: under the account mutex it calls
// fn with the current account, commits m.write to the store, swaps in the
// new account and snapshot and hands the deltas to the Sync streams. If fn
// or the store fails nothing changes.
//
// In HA mode a commit refused with store.ErrStale (another instance
// changed the account first) catches up with the store (change log or
// reload) and runs fn again on the fresh state, up to staleRetries times:
// fn is a function of the current account, and only the committed
// attempt's after runs.
func (s *Service) mutate(ctx context.Context, accountID, op string, fn func(cur *model.Account) (*mutation, error)) error {
	if err := s.running(); err != nil {
		return err
	}
	st, err := s.account(accountID)
	if err != nil && s.follow != nil { // HA: created through another instance a moment ago?
		s.catchUpAccount(ctx, accountID)
		st, err = s.account(accountID)
	}
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.follow != nil {
		// HA: writers of this account on every instance take turns, and
		// each computes its change from the stored state.
		stored, unlock, err := s.follow.cfg.Feed.LockAccount(ctx, accountID)
		if err != nil {
			return storeError(op, err)
		}
		defer unlock()
		if stored > st.view().acct.Version {
			if _, err := s.catchUpLocked(ctx, st, stored); err != nil {
				return storeError(op, err)
			}
		}
	}
	for attempt := 0; ; attempt++ {
		err := s.mutateLocked(ctx, st, op, fn)
		if err == nil || s.follow == nil || attempt >= staleRetries || !errors.Is(err, store.ErrStale) {
			return err
		}
		// Instances writing one account back to back can keep overtaking
		// each other; a short random pause breaks the lockstep.
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff.Jitter(time.Duration(attempt+1) * 5 * time.Millisecond)):
		}
		if _, rerr := s.catchUpLocked(ctx, st, 0); rerr != nil {
			return err
		}
		s.log.Debug("retrying a change after another instance's", "account", accountID, "op", op, "attempt", attempt+2)
	}
}

// mutateLocked is one attempt of mutate; st.mu is held.
func (s *Service) mutateLocked(ctx context.Context, st *account, op string, fn func(cur *model.Account) (*mutation, error)) error {
	accountID := st.id
	v := st.view()
	m, err := fn(v.acct)
	if err != nil {
		return err
	}
	if m == nil { // nothing to do
		return nil
	}
	if err := checkLimits(v.acct, m.next); err != nil {
		return err
	}
	// Next is pure: build the snapshot before committing so that a change
	// whose maps would be too large is refused with nothing stored.
	snap := v.snap.Next(m.next, m.change)
	if err := checkMapSize(v.snap, snap, m.change, s.cfg.MaxMapBytes); err != nil {
		return err
	}
	// The write commits only if the stored account is still the version
	// v.acct was loaded or last written at: a writer whose in-memory state
	// is stale (another server wrote the account) gets store.ErrStale.
	base := v.acct.Version
	write := func(tx store.Tx) error {
		if err := tx.BumpVersion(accountID, base); err != nil {
			return err
		}
		if err := m.write(tx); err != nil {
			return err
		}
		if m.audit == nil {
			return nil
		}
		return tx.AppendEvent(accountID, m.audit.event(ctx, func() model.Event { return model.Event{At: s.now().UTC()} }))
	}
	if err := s.cfg.Store.Update(ctx, write); err != nil {
		return storeError(op, err)
	}
	m.next.Version = base + 1 // m.next is a fresh clone, not yet published
	st.cur.Store(&view{acct: m.next, snap: snap})
	if m.after != nil {
		m.after()
	}
	s.hub.deliver(accountID, netmap.Deltas(v.snap, snap, m.change), s.cfg.MaxCoalesced)
	return nil
}

// cloneAccount returns a copy of a whose maps are new (objects are shared;
// they are immutable once in an account: changes replace the pointer).
func cloneAccount(a *model.Account) *model.Account {
	c := *a
	c.Peers = maps.Clone(a.Peers)
	c.Groups = maps.Clone(a.Groups)
	c.SetupKeys = maps.Clone(a.SetupKeys)
	c.Policies = maps.Clone(a.Policies)
	c.Routes = maps.Clone(a.Routes)
	c.NameserverGroups = maps.Clone(a.NameserverGroups)
	c.DNSZones = maps.Clone(a.DNSZones)
	c.AdminTokens = maps.Clone(a.AdminTokens)
	c.Users = maps.Clone(a.Users)
	c.AccessTokens = maps.Clone(a.AccessTokens)
	fillMaps(&c)
	return &c
}

// deepCopy returns a copy of a that shares nothing mutable with it.
func deepCopy(a *model.Account) *model.Account {
	c := cloneAccount(a)
	for id, p := range c.Peers {
		cp := *p
		c.Peers[id] = &cp
	}
	for id, g := range c.Groups {
		cp := *g
		cp.PeerIDs = append([]string(nil), g.PeerIDs...)
		c.Groups[id] = &cp
	}
	for id, k := range c.SetupKeys {
		cp := *k
		cp.KeyHash = append([]byte(nil), k.KeyHash...)
		cp.AutoGroups = append([]string(nil), k.AutoGroups...)
		c.SetupKeys[id] = &cp
	}
	for id, p := range c.Policies {
		c.Policies[id] = clonePolicy(p)
	}
	for id, r := range c.Routes {
		cp := *r
		cp.PeerGroups = append([]string(nil), r.PeerGroups...)
		cp.Groups = append([]string(nil), r.Groups...)
		c.Routes[id] = &cp
	}
	for id, n := range c.NameserverGroups {
		cp := *n
		cp.Nameservers = append(cp.Nameservers[:0:0], n.Nameservers...)
		cp.Domains = append([]string(nil), n.Domains...)
		cp.Groups = append([]string(nil), n.Groups...)
		c.NameserverGroups[id] = &cp
	}
	for id, z := range c.DNSZones {
		cp := *z
		cp.Records = append([]model.DNSRecord(nil), z.Records...)
		c.DNSZones[id] = &cp
	}
	for id, t := range c.AdminTokens {
		cp := *t
		cp.TokenHash = append([]byte(nil), t.TokenHash...)
		c.AdminTokens[id] = &cp
	}
	for id, u := range c.Users {
		cp := *u
		cp.Groups = append([]string(nil), u.Groups...)
		c.Users[id] = &cp
	}
	for id, t := range c.AccessTokens {
		cp := *t
		cp.TokenHash = append([]byte(nil), t.TokenHash...)
		c.AccessTokens[id] = &cp
	}
	return c
}

func clonePolicy(p *model.Policy) *model.Policy {
	cp := *p
	cp.Rules = make([]model.PolicyRule, len(p.Rules))
	for i, r := range p.Rules {
		r.Sources = append([]string(nil), r.Sources...)
		r.Destinations = append([]string(nil), r.Destinations...)
		r.Ports = append([]model.PortRange(nil), r.Ports...)
		cp.Rules[i] = r
	}
	return &cp
}

// allGroup returns the account's implicit All group.
func allGroup(a *model.Account) *model.Group {
	for _, g := range a.Groups {
		if g.Name == model.AllGroupName {
			return g
		}
	}
	return nil
}

// withPeer returns a copy of g with peerID added (g itself is unchanged).
func withPeer(g *model.Group, peerID string) *model.Group {
	cp := *g
	cp.PeerIDs = append(append(make([]string, 0, len(g.PeerIDs)+1), g.PeerIDs...), peerID)
	return &cp
}

// withoutPeer returns a copy of g without peerID, or nil when g does not
// hold it.
func withoutPeer(g *model.Group, peerID string) *model.Group {
	idx := -1
	for i, id := range g.PeerIDs {
		if id == peerID {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil
	}
	cp := *g
	cp.PeerIDs = make([]string, 0, len(g.PeerIDs)-1)
	cp.PeerIDs = append(append(cp.PeerIDs, g.PeerIDs[:idx]...), g.PeerIDs[idx+1:]...)
	return &cp
}
