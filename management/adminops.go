package management

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"petrel/internal/keys"
	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/management/store"
)

// AuthenticateToken checks an admin bearer token in constant time.
func (s *Service) AuthenticateToken(token string) (accountID string, ok bool) {
	if token == "" {
		return "", false
	}
	accountID, _, ok = s.adminToken(token)
	return accountID, ok
}

// Snapshot returns a deep copy of the account.
func (s *Service) Snapshot(accountID string) (*model.Account, error) {
	st, err := s.account(accountID)
	if err != nil {
		return nil, err
	}
	a := deepCopy(st.view().acct)
	if all := allGroup(a); all != nil { // membership of All is implicit
		all.PeerIDs = make([]string, 0, len(a.Peers))
		for id := range a.Peers {
			all.PeerIDs = append(all.PeerIDs, id)
		}
		slices.Sort(all.PeerIDs)
	}
	return a, nil
}

// CreateSetupKey creates a setup key and returns it with its plain secret.
func (s *Service) CreateSetupKey(ctx context.Context, accountID string, in SetupKeyInput) (*model.SetupKey, string, error) {
	name, err := checkName("setup key", in.Name)
	if err != nil {
		return nil, "", err
	}
	if in.UsageLimit < 0 {
		return nil, "", Errorf(KindInvalid, "usage limit must not be negative")
	}
	if !in.Reusable {
		if in.UsageLimit > 1 {
			return nil, "", Errorf(KindInvalid, "a one-off key has a usage limit of 1; make it reusable for %d uses", in.UsageLimit)
		}
		in.UsageLimit = 1
	}
	if in.ExpiresIn < 0 {
		return nil, "", Errorf(KindInvalid, "expires_in must not be negative")
	}
	secret := "psk_" + randomString(20)
	now := s.now().UTC()
	k := &model.SetupKey{
		ID: newID(), Name: name, KeyHash: hashSecret(secret), KeyPrefix: secret[:8],
		Reusable: in.Reusable, UsageLimit: in.UsageLimit, AutoGroups: dedup(in.AutoGroups),
		Ephemeral: in.Ephemeral, CreatedAt: now,
	}
	if in.ExpiresIn > 0 {
		k.ExpiresAt = now.Add(in.ExpiresIn)
	}
	err = s.mutate(ctx, accountID, "create setup key", func(cur *model.Account) (*mutation, error) {
		if err := checkGroupRefs(cur, "auto_groups", k.AutoGroups, false); err != nil {
			return nil, err
		}
		next := cloneAccount(cur)
		next.SetupKeys[k.ID] = k
		return &mutation{next: next, write: func(tx store.Tx) error { return tx.Put(cur.ID, k) },
			audit: &audit{action: "setup_key.create", kind: model.KindSetupKey, id: k.ID, detail: k.Name}}, nil
	})
	if err != nil {
		return nil, "", err
	}
	return copySetupKey(k), secret, nil
}

// RevokeSetupKey marks a setup key revoked.
func (s *Service) RevokeSetupKey(ctx context.Context, accountID, id string) (*model.SetupKey, error) {
	var out *model.SetupKey
	err := s.mutate(ctx, accountID, "revoke setup key", func(cur *model.Account) (*mutation, error) {
		old := cur.SetupKeys[id]
		if old == nil {
			return nil, Errorf(KindNotFound, "setup key %q not found", id)
		}
		k := *old
		k.Revoked = true
		next := cloneAccount(cur)
		next.SetupKeys[id] = &k
		out = &k
		return &mutation{next: next, write: func(tx store.Tx) error { return tx.Put(cur.ID, &k) },
			audit: &audit{action: "setup_key.revoke", kind: model.KindSetupKey, id: k.ID, detail: k.Name}}, nil
	})
	if err != nil {
		return nil, err
	}
	return copySetupKey(out), nil
}

func copySetupKey(k *model.SetupKey) *model.SetupKey {
	cp := *k
	cp.KeyHash = slices.Clone(k.KeyHash)
	cp.AutoGroups = slices.Clone(k.AutoGroups)
	return &cp
}

// Put creates or replaces a group, policy, route, nameserver group, DNS
// zone, or renames a peer. The caller's object is not retained.
func (s *Service) Put(ctx context.Context, accountID string, obj model.Object) (model.Object, error) {
	var stored model.Object
	err := s.mutate(ctx, accountID, "save "+string(objKind(obj)), func(cur *model.Account) (*mutation, error) {
		next := cloneAccount(cur)
		var ch netmap.Change
		var put model.Object
		switch o := obj.(type) {
		case *model.Group:
			g, err := prepareGroup(cur, o)
			if err != nil {
				return nil, err
			}
			next.Groups[g.ID] = g
			ch.Groups, put = []string{g.ID}, g
		case *model.Policy:
			p := clonePolicy(o)
			if err := assignID(cur.Policies, &p.ID, "policy"); err != nil {
				return nil, err
			}
			if err := validatePolicy(cur, p); err != nil {
				return nil, err
			}
			next.Policies[p.ID] = p
			ch.Policies, put = []string{p.ID}, p
		case *model.Route:
			r := *o
			r.PeerGroups, r.Groups = dedup(o.PeerGroups), dedup(o.Groups)
			if err := assignID(cur.Routes, &r.ID, "route"); err != nil {
				return nil, err
			}
			if err := validateRoute(cur, &r); err != nil {
				return nil, err
			}
			next.Routes[r.ID] = &r
			ch.Routes, put = []string{r.ID}, &r
		case *model.NameserverGroup:
			n := *o
			n.Nameservers = slices.Clone(o.Nameservers)
			n.Domains, n.Groups = slices.Clone(o.Domains), dedup(o.Groups)
			if err := assignID(cur.NameserverGroups, &n.ID, "nameserver group"); err != nil {
				return nil, err
			}
			if err := validateNameserverGroup(cur, &n); err != nil {
				return nil, err
			}
			next.NameserverGroups[n.ID] = &n
			ch.NameserverGroups, put = []string{n.ID}, &n
		case *model.DNSZone:
			z := *o
			z.Records = slices.Clone(o.Records)
			if err := assignID(cur.DNSZones, &z.ID, "zone"); err != nil {
				return nil, err
			}
			if err := validateZone(cur, &z); err != nil {
				return nil, err
			}
			next.DNSZones[z.ID] = &z
			ch.Zones, put = []string{z.ID}, &z
		case *model.Peer:
			p, err := preparePeer(cur, o)
			if err != nil {
				return nil, err
			}
			next.Peers[p.ID] = p
			ch.PeersChanged, put = []string{p.ID}, p
		case nil:
			return nil, Errorf(KindInvalid, "no object given")
		default:
			return nil, Errorf(KindInvalid, "objects of kind %q cannot be saved here", obj.ObjectKind())
		}
		stored = put
		verb := ".update"
		if obj.ObjectID() == "" {
			verb = ".create"
		}
		return &mutation{next: next, change: ch, write: func(tx store.Tx) error { return tx.Put(cur.ID, put) },
			audit: &audit{action: string(put.ObjectKind()) + verb, kind: put.ObjectKind(), id: put.ObjectID()}}, nil
	})
	if err != nil {
		return nil, err
	}
	return copyObject(stored), nil
}

func objKind(obj model.Object) model.Kind {
	if obj == nil {
		return "object"
	}
	return obj.ObjectKind()
}

// assignID gives a new object an ID, or checks that a replaced one exists.
func assignID[T any](m map[string]*T, id *string, what string) error {
	if *id == "" {
		*id = newID()
		return nil
	}
	if m[*id] == nil {
		return Errorf(KindNotFound, "%s %q not found", what, *id)
	}
	return nil
}

func prepareGroup(cur *model.Account, in *model.Group) (*model.Group, error) {
	g := &model.Group{ID: in.ID, PeerIDs: dedup(in.PeerIDs)}
	name, err := checkName("group", in.Name)
	if err != nil {
		return nil, err
	}
	g.Name = name
	if err := assignID(cur.Groups, &g.ID, "group"); err != nil {
		return nil, err
	}
	if old := cur.Groups[g.ID]; old != nil && old.Name == model.AllGroupName {
		return nil, Errorf(KindInvalid, "the %s group cannot be edited", model.AllGroupName)
	}
	for _, other := range cur.Groups {
		if other.ID != g.ID && strings.EqualFold(other.Name, g.Name) {
			return nil, Errorf(KindConflict, "a group named %q already exists", other.Name)
		}
	}
	for _, pid := range g.PeerIDs {
		if cur.Peers[pid] == nil {
			return nil, Errorf(KindInvalid, "group %q: unknown peer %q", g.Name, pid)
		}
	}
	return g, nil
}

func preparePeer(cur *model.Account, in *model.Peer) (*model.Peer, error) {
	old := cur.Peers[in.ID]
	if old == nil {
		return nil, Errorf(KindNotFound, "peer %q not found", in.ID)
	}
	p := *old
	if in.Name != "" {
		name, err := checkName("peer", in.Name)
		if err != nil {
			return nil, err
		}
		p.Name = name
	}
	if in.DNSLabel != "" && in.DNSLabel != old.DNSLabel {
		if sanitizeLabel(in.DNSLabel) != in.DNSLabel {
			return nil, Errorf(KindInvalid, "dns label %q must be 1-63 characters of a-z, 0-9 and '-'", in.DNSLabel)
		}
		for _, other := range cur.Peers {
			if other.ID != p.ID && other.DNSLabel == in.DNSLabel {
				return nil, Errorf(KindConflict, "dns label %q is used by peer %q", in.DNSLabel, other.Name)
			}
		}
		p.DNSLabel = in.DNSLabel
	}
	return &p, nil
}

// Delete removes an object by kind and ID. Groups still referenced by a
// policy, route, nameserver group or setup key are refused (KindConflict).
// Deleting a peer removes it from its groups, deletes routes it serves
// alone, and closes its Sync stream.
func (s *Service) Delete(ctx context.Context, accountID string, kind model.Kind, id string) error {
	if kind == model.KindPeer {
		return s.deletePeer(ctx, accountID, id, false)
	}
	return s.mutate(ctx, accountID, "delete "+string(kind), func(cur *model.Account) (*mutation, error) {
		next := cloneAccount(cur)
		var ch netmap.Change
		var found bool
		switch kind {
		case model.KindGroup:
			g := cur.Groups[id]
			if found = g != nil; found {
				if g.Name == model.AllGroupName {
					return nil, Errorf(KindInvalid, "the %s group cannot be deleted", model.AllGroupName)
				}
				if err := groupInUse(cur, id); err != nil {
					return nil, err
				}
				delete(next.Groups, id)
				ch.Groups = []string{id}
			}
		case model.KindPolicy:
			_, found = cur.Policies[id]
			delete(next.Policies, id)
			ch.Policies = []string{id}
		case model.KindRoute:
			_, found = cur.Routes[id]
			delete(next.Routes, id)
			ch.Routes = []string{id}
		case model.KindNameserverGroup:
			_, found = cur.NameserverGroups[id]
			delete(next.NameserverGroups, id)
			ch.NameserverGroups = []string{id}
		case model.KindDNSZone:
			_, found = cur.DNSZones[id]
			delete(next.DNSZones, id)
			ch.Zones = []string{id}
		case model.KindSetupKey:
			_, found = cur.SetupKeys[id]
			delete(next.SetupKeys, id)
		case model.KindAdminToken:
			_, found = cur.AdminTokens[id]
			delete(next.AdminTokens, id)
		default:
			return nil, Errorf(KindInvalid, "objects of kind %q cannot be deleted", kind)
		}
		if !found {
			return nil, Errorf(KindNotFound, "%s %q not found", strings.ReplaceAll(string(kind), "_", " "), id)
		}
		return &mutation{next: next, change: ch, write: func(tx store.Tx) error { return tx.Delete(cur.ID, kind, id) },
			audit: &audit{action: string(kind) + ".delete", kind: kind, id: id}}, nil
	})
}

// groupInUse names the first object that references group id.
func groupInUse(a *model.Account, id string) error {
	for _, p := range sortedByID(a.Policies) {
		for _, r := range p.Rules {
			if slices.Contains(r.Sources, id) || slices.Contains(r.Destinations, id) {
				return Errorf(KindConflict, "group is used by policy %q", p.Name)
			}
		}
	}
	for _, r := range sortedByID(a.Routes) {
		if slices.Contains(r.PeerGroups, id) || slices.Contains(r.Groups, id) {
			return Errorf(KindConflict, "group is used by route %q (%s)", r.ID, r.Network)
		}
	}
	for _, n := range sortedByID(a.NameserverGroups) {
		if slices.Contains(n.Groups, id) {
			return Errorf(KindConflict, "group is used by nameserver group %q", n.Name)
		}
	}
	for _, k := range sortedByID(a.SetupKeys) {
		if slices.Contains(k.AutoGroups, id) {
			return Errorf(KindConflict, "group is used by setup key %q", k.Name)
		}
	}
	return nil
}

func sortedByID[T any](m map[string]*T) []*T {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]*T, len(ids))
	for i, id := range ids {
		out[i] = m[id]
	}
	return out
}

// deletePeer removes a peer; with onlyIfOffline it refuses (KindPrecondition)
// when the peer has a live stream (ephemeral cleanup).
func (s *Service) deletePeer(ctx context.Context, accountID, peerID string, onlyIfOffline bool) error {
	return s.mutate(ctx, accountID, "delete peer", func(cur *model.Account) (*mutation, error) {
		p := cur.Peers[peerID]
		if p == nil {
			return nil, Errorf(KindNotFound, "peer %q not found", peerID)
		}
		if connected, _ := s.hub.status(peerID); onlyIfOffline && connected {
			return nil, Errorf(KindPrecondition, "peer %q is connected", peerID)
		}
		next := cloneAccount(cur)
		delete(next.Peers, peerID)
		ch := netmap.Change{PeersRemoved: []string{peerID}}
		var groups []*model.Group
		for _, g := range sortedByID(cur.Groups) {
			if ng := withoutPeer(g, peerID); ng != nil {
				groups = append(groups, ng)
				next.Groups[ng.ID] = ng
				ch.Groups = append(ch.Groups, ng.ID)
			}
		}
		var routes []string
		for _, r := range sortedByID(cur.Routes) {
			if r.Peer == peerID {
				routes = append(routes, r.ID)
				delete(next.Routes, r.ID)
			}
		}
		ch.Routes = routes
		pk := p.PublicKey
		return &mutation{
			next: next, change: ch,
			write: func(tx store.Tx) error {
				for _, g := range groups {
					if err := tx.Put(cur.ID, g); err != nil {
						return err
					}
				}
				for _, id := range routes {
					if err := tx.Delete(cur.ID, model.KindRoute, id); err != nil {
						return err
					}
				}
				return tx.Delete(cur.ID, model.KindPeer, peerID)
			},
			audit: &audit{action: "peer.delete", kind: model.KindPeer, id: peerID, detail: p.Name},
			after: func() {
				if k, err := keys.ParsePublic(pk); err == nil {
					s.mu.Lock()
					if s.byKey[k].peerID == peerID {
						delete(s.byKey, k)
					}
					s.mu.Unlock()
				}
				s.hub.forget(peerID, Errorf(KindPermission, "peer was deleted"))
			},
		}, nil
	})
}

// UpdateSettings replaces the account settings.
func (s *Service) UpdateSettings(ctx context.Context, accountID string, set model.Settings) error {
	if !validDomain(set.DNSDomain) {
		return Errorf(KindInvalid, "dns_domain %q is not a valid domain", set.DNSDomain)
	}
	set.DNSDomain = normDomain(set.DNSDomain)
	if set.LoginExpiration < 0 || (set.LoginExpiration > 0 && set.LoginExpiration < time.Minute) || set.LoginExpiration > 10*365*24*time.Hour {
		return Errorf(KindInvalid, "login expiration %s: want 0 (never) or between 1 minute and 10 years", set.LoginExpiration)
	}
	return s.mutate(ctx, accountID, "update settings", func(cur *model.Account) (*mutation, error) {
		if cur.Settings == set {
			return nil, nil
		}
		for _, z := range cur.DNSZones {
			if z.Domain == set.DNSDomain {
				return nil, Errorf(KindConflict, "dns_domain %q is already a custom zone", set.DNSDomain)
			}
		}
		next := cloneAccount(cur)
		next.Settings = set
		return &mutation{
			next: next, change: netmap.Change{Settings: true},
			write: func(tx store.Tx) error { return tx.SaveSettings(cur.ID, set) },
			audit: &audit{action: "settings.update"},
		}, nil
	})
}

// CheckPolicy answers whether src may reach dst over proto/port.
func (s *Service) CheckPolicy(accountID, srcPeerID, dstPeerID string, proto model.Protocol, port uint16) (PolicyVerdict, error) {
	st, err := s.account(accountID)
	if err != nil {
		return PolicyVerdict{}, err
	}
	v := st.view()
	for _, id := range []string{srcPeerID, dstPeerID} {
		if v.acct.Peers[id] == nil {
			return PolicyVerdict{}, Errorf(KindNotFound, "peer %q not found", id)
		}
	}
	switch proto {
	case "":
		proto = model.ProtoAll
	case model.ProtoAll, model.ProtoTCP, model.ProtoUDP, model.ProtoICMP:
	default:
		return PolicyVerdict{}, Errorf(KindInvalid, "unknown protocol %q", proto)
	}
	vd := v.snap.Check(srcPeerID, dstPeerID, proto, port)
	return PolicyVerdict{Allowed: vd.Allowed, PolicyID: vd.PolicyID, RuleID: vd.RuleID, Reason: vd.Reason}, nil
}

func dedup(ids []string) []string {
	var out []string
	for _, id := range ids {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// copyObject returns a copy of a stored object so callers cannot mutate
// the in-memory state.
func copyObject(o model.Object) model.Object {
	a := model.NewAccount("", netip.Prefix{}, time.Time{})
	switch v := o.(type) {
	case *model.Group:
		a.Groups[v.ID] = v
		return deepCopy(a).Groups[v.ID]
	case *model.Policy:
		return clonePolicy(v)
	case *model.Route:
		a.Routes[v.ID] = v
		return deepCopy(a).Routes[v.ID]
	case *model.NameserverGroup:
		a.NameserverGroups[v.ID] = v
		return deepCopy(a).NameserverGroups[v.ID]
	case *model.DNSZone:
		a.DNSZones[v.ID] = v
		return deepCopy(a).DNSZones[v.ID]
	case *model.Peer:
		cp := *v
		return &cp
	}
	panic(fmt.Sprintf("copyObject: unexpected %T", o))
}
