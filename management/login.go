package management

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"petrel/internal/keys"
	"petrel/management/identity"
	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/management/store"
	"petrel/proto/managementpb"
)

// errRegisteredMeanwhile tells Login that the peer key was registered by a
// concurrent Login while it waited for the account lock.
var errRegisteredMeanwhile = errors.New("peer registered concurrently")

// Login registers a new peer (a setup key is required) or re-authenticates a
// known one (its meta and last-seen time are updated; no key is needed). On
// failure nothing changes.
func (s *Service) Login(ctx context.Context, peerKey keys.Public, req *managementpb.LoginRequest) (*managementpb.LoginResponse, error) {
	if err := s.running(); err != nil {
		return nil, err
	}
	if peerKey.IsZero() {
		return nil, Errorf(KindInvalid, "peer key is zero")
	}
	if req == nil {
		req = &managementpb.LoginRequest{}
	}
	src := sourceOf(ctx)
	if err := s.admitLogin(src); err != nil {
		return nil, err
	}
	var who *identity.Identity
	if raw := req.GetJwt(); raw != "" {
		var err error
		if who, err = s.verifyLoginToken(ctx, raw, peerKey); err != nil {
			return nil, err
		}
	}
	// HA: a peer registered through another instance a moment ago must
	// not look unregistered here.
	s.lookupKeyFresh(ctx, peerKey)
	for range 3 {
		ref, ok, release, wait := s.claimKey(peerKey)
		if ok {
			if err := s.admitReauth(src, peerKey); err != nil {
				return nil, err
			}
			if who != nil {
				return s.userLogin(ctx, ref, peerKey, req, who)
			}
			return s.reauthenticate(ctx, ref, peerKey, req)
		}
		if wait != nil { // another Login registers this key right now
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, storeError("login", ctx.Err())
			}
		}
		var resp *managementpb.LoginResponse
		var err error
		if who != nil {
			resp, err = s.userLogin(ctx, peerRef{}, peerKey, req, who)
		} else {
			if err := s.PrecheckRegistration(ctx, peerKey, req.GetSetupKey()); err != nil {
				release()
				return nil, err
			}
			resp, err = s.register(ctx, peerKey, req)
		}
		release()
		if errors.Is(err, errRegisteredMeanwhile) {
			continue
		}
		return resp, err
	}
	return nil, Errorf(KindUnavailable, "login: concurrent logins of the same key; retry")
}

// claimKey returns the peer registered with pk, or claims pk for a
// registration (release must be called), or returns a channel closed when
// the registration in flight for pk ends. Claims span accounts, so one key
// cannot be registered in two accounts at once.
func (s *Service) claimKey(pk keys.Public) (ref peerRef, ok bool, release func(), wait <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.byKey[pk]; ok {
		return r, true, nil, nil
	}
	if ch, busy := s.registering[pk]; busy {
		return peerRef{}, false, nil, ch
	}
	ch := make(chan struct{})
	s.registering[pk] = ch
	return peerRef{}, false, func() {
		s.mu.Lock()
		delete(s.registering, pk)
		s.mu.Unlock()
		close(ch)
	}, nil
}

func (s *Service) reauthenticate(ctx context.Context, ref peerRef, peerKey keys.Public, req *managementpb.LoginRequest) (*managementpb.LoginResponse, error) {
	now := s.now().UTC()
	var peer *model.Peer
	var acct *model.Account
	err := s.mutate(ctx, ref.accountID, "re-authenticate peer", func(cur *model.Account) (*mutation, error) {
		old := cur.Peers[ref.peerID]
		if old == nil {
			return nil, Errorf(KindUnauthenticated, "peer was removed; log in again with a setup key")
		}
		if err := loginAllowed(cur, old, now); err != nil {
			return nil, err
		}
		p := *old
		if m := req.GetMeta(); m != nil {
			p.Meta = metaFrom(m, req.GetHostname())
		}
		p.LastSeen = now
		next := cloneAccount(cur)
		next.Peers[p.ID] = &p
		peer, acct = &p, next
		return &mutation{
			next:   next,
			change: netmap.Change{PeersChanged: []string{p.ID}},
			write:  func(tx store.Tx) error { return tx.Put(cur.ID, &p) },
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.hub.seen(ref.peerID, now)
	s.log.Debug("peer re-authenticated", "account", ref.accountID, "peer", ref.peerID)
	return &managementpb.LoginResponse{
		PeerConfig:   peerConfig(acct, peer),
		ServerConfig: s.serverConfig(peerKey),
	}, nil
}

// findSetupKey locates a setup key by the hash of its secret.
func (s *Service) findSetupKey(hash []byte) (accountID string, key *model.SetupKey) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for id, st := range s.accounts {
		for _, k := range st.view().acct.SetupKeys {
			if string(k.KeyHash) == string(hash) {
				return id, k
			}
		}
	}
	return "", nil
}

// findSetupKeyFresh is findSetupKey that, with HA, catches up with the
// store before it reports a miss (a key created through another instance
// a moment ago).
func (s *Service) findSetupKeyFresh(ctx context.Context, hash []byte) (accountID string) {
	if accountID, _ = s.findSetupKey(hash); accountID != "" || s.follow == nil {
		return accountID
	}
	s.catchUpAll(ctx)
	accountID, _ = s.findSetupKey(hash)
	return accountID
}

// checkSetupKey reports why key cannot be used now, as a typed error.
func checkSetupKey(k *model.SetupKey, now time.Time) error {
	switch {
	case k.Revoked:
		return storeError("use setup key", store.ErrKeyRevoked)
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return storeError("use setup key", store.ErrKeyExpired)
	case !k.Reusable && k.UsedTimes >= 1, k.UsageLimit > 0 && k.UsedTimes >= k.UsageLimit:
		return storeError("use setup key", store.ErrKeyExhausted)
	}
	return nil
}

func (s *Service) register(ctx context.Context, peerKey keys.Public, req *managementpb.LoginRequest) (*managementpb.LoginResponse, error) {
	secret := strings.TrimSpace(req.GetSetupKey())
	if secret == "" {
		if s.cfg.Identity != nil {
			return nil, Errorf(KindUnauthenticated, "peer is not registered: sign in (petrel up without a setup key) or give a setup key")
		}
		return nil, Errorf(KindUnauthenticated, "peer is not registered: a setup key is required")
	}
	hash := hashSecret(secret)
	accountID := s.findSetupKeyFresh(ctx, hash)
	if accountID == "" {
		return nil, Errorf(KindUnauthenticated, "setup key not found")
	}
	now := s.now().UTC()
	var peer *model.Peer
	var acct *model.Account
	err := s.mutate(ctx, accountID, "register peer", func(cur *model.Account) (*mutation, error) {
		if _, ok := s.lookupKey(peerKey); ok {
			return nil, errRegisteredMeanwhile
		}
		var key *model.SetupKey
		for _, k := range cur.SetupKeys {
			if string(k.KeyHash) == string(hash) {
				key = k
			}
		}
		if key == nil {
			return nil, Errorf(KindUnauthenticated, "setup key not found")
		}
		if err := checkSetupKey(key, now); err != nil {
			return nil, err
		}
		p, err := newPeer(cur, peerKey, req, now)
		if err != nil {
			return nil, err
		}
		p.SetupKeyID, p.Ephemeral = key.ID, key.Ephemeral
		next := cloneAccount(cur)
		next.Peers[p.ID] = p
		// The All group's membership is implicit (not stored): a
		// registration writes O(1) rows however large the account is.
		var groups []*model.Group
		for _, gid := range key.AutoGroups {
			if g := cur.Groups[gid]; g != nil && g.Name != model.AllGroupName {
				groups = append(groups, withPeer(g, p.ID))
			}
		}
		ch := netmap.Change{PeersAdded: []string{p.ID}}
		for _, g := range groups {
			next.Groups[g.ID] = g
			ch.Groups = append(ch.Groups, g.ID)
		}
		usedKey := *key
		peer, acct = p, next
		return &mutation{
			next:   next,
			change: ch,
			write: func(tx store.Tx) error {
				aid, k, err := tx.UseSetupKey(hash, now)
				if err != nil {
					return err
				}
				if k == nil || aid != cur.ID {
					return fmt.Errorf("setup key belongs to account %s, not %s", aid, cur.ID)
				}
				usedKey.UsedTimes, usedKey.LastUsed = k.UsedTimes, k.LastUsed
				if err := tx.Put(cur.ID, p); err != nil {
					return err
				}
				for _, g := range groups {
					if err := tx.Put(cur.ID, g); err != nil {
						return err
					}
				}
				next.SetupKeys[usedKey.ID] = &usedKey
				return nil
			},
			audit: &audit{action: "peer.register", kind: model.KindPeer, id: p.ID, detail: p.Name, actor: "setup_key:" + key.ID},
			after: func() {
				s.mu.Lock()
				s.byKey[peerKey] = peerRef{cur.ID, p.ID}
				s.mu.Unlock()
			},
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.hub.seen(peer.ID, now)
	s.log.Info("peer registered", "account", accountID, "peer", peer.ID, "name", peer.Name, "ip", peer.IP, "ephemeral", peer.Ephemeral)
	return &managementpb.LoginResponse{
		PeerConfig:   peerConfig(acct, peer),
		ServerConfig: s.serverConfig(peerKey),
	}, nil
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func metaFrom(m *managementpb.PeerMeta, hostname string) model.PeerMeta {
	out := model.PeerMeta{
		Hostname:     m.GetHostname(),
		OS:           m.GetOs(),
		Kernel:       m.GetKernel(),
		Version:      m.GetAgentVersion(),
		NetstackMode: m.GetNetstackMode(),
	}
	if out.Hostname == "" {
		out.Hostname = hostname
	}
	return cleanMeta(out)
}

// displayName is the peer name derived from the hostname an agent sent
// (agenttext.go).
func displayName(hostname string) string {
	if name := cleanAgentText(hostname, maxHostname); name != "" {
		return name
	}
	return "peer"
}

func peerConfig(a *model.Account, p *model.Peer) *managementpb.PeerConfig {
	return &managementpb.PeerConfig{
		Address:  netip.PrefixFrom(p.IP, a.Network.Bits()).String(),
		Fqdn:     p.DNSLabel + "." + a.Settings.DNSDomain,
		DnsLabel: p.DNSLabel,
		PeerId:   p.ID,
	}
}

// allocateIP returns the first free address of the account network, skipping
// the network and broadcast addresses.
func allocateIP(a *model.Account) (netip.Addr, error) {
	used := make(map[netip.Addr]struct{}, len(a.Peers))
	for _, p := range a.Peers {
		used[p.IP] = struct{}{}
	}
	n := a.Network.Masked()
	last := lastAddr(n)
	for ip := n.Addr().Next(); ip.IsValid() && n.Contains(ip) && ip != last; ip = ip.Next() {
		if _, taken := used[ip]; !taken {
			return ip, nil
		}
	}
	return netip.Addr{}, Errorf(KindPrecondition, "no free address left in %s", n)
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		return a.Unmap()
	}
	return a
}

// sanitizeLabel turns a name into a DNS label: lowercase [a-z0-9-], no
// leading or trailing hyphen, at most 63 characters; "" if nothing is left.
func sanitizeLabel(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.IndexByte(s, '.'); i >= 0 { // a FQDN hostname: keep the host part
		s = s[:i]
	}
	var b strings.Builder
	hyphen := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			hyphen = false
		default:
			if !hyphen && b.Len() > 0 {
				b.WriteByte('-')
				hyphen = true
			}
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 63 {
		out = strings.TrimRight(out[:63], "-")
	}
	return out
}

// allocateLabel picks the first free candidate label, or the first
// candidate with the smallest free -N suffix.
func allocateLabel(a *model.Account, candidates []string) string {
	used := make(map[string]struct{}, len(a.Peers))
	for _, p := range a.Peers {
		used[p.DNSLabel] = struct{}{}
	}
	base := ""
	for _, c := range candidates {
		l := sanitizeLabel(c)
		if l == "" {
			continue
		}
		if base == "" {
			base = l
		}
		if _, taken := used[l]; !taken {
			return l
		}
	}
	if base == "" {
		base = "peer"
		if _, taken := used[base]; !taken {
			return base
		}
	}
	for i := 2; ; i++ {
		suffix := "-" + strconv.Itoa(i)
		b := base
		if len(b)+len(suffix) > 63 {
			b = strings.TrimRight(b[:63-len(suffix)], "-")
		}
		if _, taken := used[b+suffix]; !taken {
			return b + suffix
		}
	}
}
