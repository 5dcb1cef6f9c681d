package restapi

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"petrel/management"
	"petrel/management/model"
)

// refView names a referenced peer or group in responses. A name of "" means
// the referenced object no longer exists.
type refView struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type peerView struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	DNSLabel  string         `json:"dns_label"`
	IP        string         `json:"ip"`
	FQDN      string         `json:"fqdn"`
	PublicKey string         `json:"public_key"`
	Groups    []refView      `json:"groups"`
	Connected bool           `json:"connected"`
	LastSeen  *time.Time     `json:"last_seen"`
	CreatedAt *time.Time     `json:"created_at"`
	Ephemeral bool           `json:"ephemeral"`
	Meta      model.PeerMeta `json:"meta"`
	// UserID and User (the email) name the user who registered the peer
	// by signing in; both "" for a setup-key peer.
	UserID    string     `json:"user_id"`
	User      string     `json:"user"`
	LastLogin *time.Time `json:"last_login"`
	// LoginExpired: the account's login expiration has passed since the
	// user last signed in from this peer. Disabled: left out of every
	// network map (login expired, or the user is blocked).
	LoginExpired bool `json:"login_expired"`
	Disabled     bool `json:"disabled"`
}

type groupView struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Peers      []refView `json:"peers"`
	PeersCount int       `json:"peers_count"`
	Implicit   bool      `json:"implicit"`
}

type setupKeyView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Key        string     `json:"key,omitempty"` // only in the create response
	KeyPrefix  string     `json:"key_prefix"`
	Reusable   bool       `json:"reusable"`
	UsageLimit int        `json:"usage_limit"`
	UsedTimes  int        `json:"used_times"`
	ExpiresAt  *time.Time `json:"expires_at"`
	Revoked    bool       `json:"revoked"`
	State      string     `json:"state"` // valid, revoked, expired, exhausted
	Valid      bool       `json:"valid"`
	AutoGroups []refView  `json:"auto_groups"`
	Ephemeral  bool       `json:"ephemeral"`
	CreatedAt  *time.Time `json:"created_at"`
	LastUsed   *time.Time `json:"last_used"`
}

type ruleView struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Sources       []refView `json:"sources"`
	Destinations  []refView `json:"destinations"`
	Protocol      string    `json:"protocol"`
	Ports         []string  `json:"ports"`
	Bidirectional bool      `json:"bidirectional"`
	Action        string    `json:"action"`
}

type policyView struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Enabled     bool       `json:"enabled"`
	Rules       []ruleView `json:"rules"`
}

type routeView struct {
	ID          string    `json:"id"`
	Description string    `json:"description"`
	NetworkID   string    `json:"network_id"`
	Network     string    `json:"network"`
	ExitNode    bool      `json:"exit_node"`
	Peer        *refView  `json:"peer,omitempty"` // absent for routes served by peer_groups
	PeerGroups  []refView `json:"peer_groups"`
	Groups      []refView `json:"groups"`
	Metric      int       `json:"metric"`
	Masquerade  bool      `json:"masquerade"`
	Enabled     bool      `json:"enabled"`
	AutoApply   bool      `json:"auto_apply"`
}

type nameserverGroupView struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Nameservers []string  `json:"nameservers"`
	Domains     []string  `json:"domains"`
	Primary     bool      `json:"primary"`
	Groups      []refView `json:"groups"`
	Enabled     bool      `json:"enabled"`
}

type zoneView struct {
	ID      string            `json:"id"`
	Domain  string            `json:"domain"`
	Records []model.DNSRecord `json:"records"`
}

type accountView struct {
	ID        string       `json:"id"`
	Network   string       `json:"network"`
	CreatedAt *time.Time   `json:"created_at"`
	Settings  settingsView `json:"settings"`
}

type checkView struct {
	Allowed  bool    `json:"allowed"`
	PolicyID string  `json:"policy_id"`
	RuleID   string  `json:"rule_id"`
	Reason   string  `json:"reason"`
	Src      refView `json:"src"`
	Dst      refView `json:"dst"`
	Protocol string  `json:"protocol"`
	Port     uint16  `json:"port"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func sortByName[T any](v []T, name, id func(T) string) {
	slices.SortFunc(v, func(a, b T) int {
		return cmp.Or(cmp.Compare(name(a), name(b)), cmp.Compare(id(a), id(b)))
	})
}

func (r resolver) groupRefViews(ids []string) []refView {
	out := make([]refView, 0, len(ids))
	for _, id := range ids {
		v := refView{ID: id}
		if g, ok := r.a.Groups[id]; ok {
			v.Name = g.Name
		}
		out = append(out, v)
	}
	return out
}

func (r resolver) peerRefView(id string) refView {
	v := refView{ID: id}
	if p, ok := r.a.Peers[id]; ok {
		v.Name = p.Name
	}
	return v
}

// peerGroups maps each peer ID to the groups it is in, sorted by name; built
// once per request so listing N peers is linear in group membership.
func (r resolver) peerGroups() map[string][]refView {
	idx := make(map[string][]refView, len(r.a.Peers))
	for _, g := range r.a.Groups {
		for _, id := range r.groupMembers(g) {
			idx[id] = append(idx[id], refView{ID: g.ID, Name: g.Name})
		}
	}
	for _, v := range idx {
		sortByName(v, func(v refView) string { return v.Name }, func(v refView) string { return v.ID })
	}
	return idx
}

func (r resolver) peerView(p *model.Peer, groups []refView, connected bool, lastSeen, now time.Time) peerView {
	if groups == nil {
		groups = []refView{}
	}
	if lastSeen.IsZero() || lastSeen.Before(p.LastSeen) {
		lastSeen = p.LastSeen
	}
	ip := ""
	if p.IP.IsValid() {
		ip = p.IP.String()
	}
	return peerView{
		ID: p.ID, Name: p.Name, DNSLabel: p.DNSLabel, IP: ip, FQDN: r.fqdn(p), PublicKey: p.PublicKey,
		Groups: groups, Connected: connected, LastSeen: optTime(lastSeen), CreatedAt: optTime(p.CreatedAt),
		Ephemeral: p.Ephemeral, Meta: p.Meta, UserID: p.UserID, User: r.userEmail(p.UserID),
		LastLogin: optTime(p.LastLogin), LoginExpired: management.LoginExpired(r.a.Settings, p, now), Disabled: p.Disabled,
	}
}

// userEmail returns the email of the account's user id ("" for none).
func (r resolver) userEmail(id string) string {
	if u := r.a.Users[id]; u != nil {
		return u.Email
	}
	return ""
}

func (r resolver) groupView(g *model.Group) groupView {
	members := r.groupMembers(g)
	peers := make([]refView, 0, len(members))
	for _, id := range members {
		peers = append(peers, r.peerRefView(id))
	}
	sortByName(peers, func(v refView) string { return v.Name }, func(v refView) string { return v.ID })
	return groupView{ID: g.ID, Name: g.Name, Peers: peers, PeersCount: len(peers), Implicit: isAll(g)}
}

// setupKeyState is "valid", "revoked", "expired" or "exhausted".
func setupKeyState(k *model.SetupKey, now time.Time) string {
	switch {
	case k.Revoked:
		return "revoked"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return "expired"
	case !k.Reusable && k.UsedTimes >= 1, k.UsageLimit > 0 && k.UsedTimes >= k.UsageLimit:
		return "exhausted"
	}
	return "valid"
}

func (r resolver) setupKeyView(k *model.SetupKey, now time.Time) setupKeyView {
	state := setupKeyState(k, now)
	return setupKeyView{
		ID: k.ID, Name: k.Name, KeyPrefix: k.KeyPrefix, Reusable: k.Reusable, UsageLimit: k.UsageLimit,
		UsedTimes: k.UsedTimes, ExpiresAt: optTime(k.ExpiresAt), Revoked: k.Revoked, State: state,
		Valid: state == "valid", AutoGroups: r.groupRefViews(k.AutoGroups), Ephemeral: k.Ephemeral,
		CreatedAt: optTime(k.CreatedAt), LastUsed: optTime(k.LastUsed),
	}
}

func (r resolver) policyView(p *model.Policy) policyView {
	rules := make([]ruleView, 0, len(p.Rules))
	for _, ru := range p.Rules {
		ports := make([]string, 0, len(ru.Ports))
		for _, pr := range ru.Ports {
			ports = append(ports, formatPortRange(pr))
		}
		rules = append(rules, ruleView{
			ID: ru.ID, Name: ru.Name, Sources: r.groupRefViews(ru.Sources), Destinations: r.groupRefViews(ru.Destinations),
			Protocol: string(ru.Protocol), Ports: ports, Bidirectional: ru.Bidirectional, Action: string(ru.Action),
		})
	}
	return policyView{ID: p.ID, Name: p.Name, Description: p.Description, Enabled: p.Enabled, Rules: rules}
}

func (r resolver) routeView(rt *model.Route) routeView {
	v := routeView{
		ID: rt.ID, Description: rt.Description, NetworkID: rt.NetworkID, Network: prefixString(rt.Network),
		ExitNode: rt.Network.IsValid() && rt.IsExitNode(), PeerGroups: r.groupRefViews(rt.PeerGroups),
		Groups: r.groupRefViews(rt.Groups), Metric: rt.Metric, Masquerade: rt.Masquerade, Enabled: rt.Enabled,
		AutoApply: rt.AutoApply,
	}
	if rt.Peer != "" {
		pv := r.peerRefView(rt.Peer)
		v.Peer = &pv
	}
	return v
}

func (r resolver) nameserverGroupView(n *model.NameserverGroup) nameserverGroupView {
	ns := make([]string, 0, len(n.Nameservers))
	for _, a := range n.Nameservers {
		ns = append(ns, a.String())
	}
	domains := n.Domains
	if domains == nil {
		domains = []string{}
	}
	return nameserverGroupView{
		ID: n.ID, Name: n.Name, Description: n.Description, Nameservers: ns, Domains: domains,
		Primary: n.Primary, Groups: r.groupRefViews(n.Groups), Enabled: n.Enabled,
	}
}

func zoneViewOf(z *model.DNSZone) zoneView {
	recs := z.Records
	if recs == nil {
		recs = []model.DNSRecord{}
	}
	return zoneView{ID: z.ID, Domain: z.Domain, Records: recs}
}

func accountViewOf(a *model.Account) accountView {
	return accountView{ID: a.ID, Network: prefixString(a.Network), CreatedAt: optTime(a.CreatedAt), Settings: settingsViewOf(a.Settings)}
}

func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}
