// Package model holds the management service's account model: plain data
// types for peers, groups, setup keys, policies, routes, DNS settings and
// admin tokens. It has no behaviour beyond validation helpers and does no I/O.
//
// Imported by management, management/store, management/netmap and
// management/restapi. Values are not synchronised: the owner of an Account
// (the management service) serialises access to it.
package model

import (
	"net/netip"
	"time"
)

// Kind names an object type; the store keeps one table per kind.
type Kind string

// Object kinds.
const (
	KindPeer            Kind = "peer"
	KindGroup           Kind = "group"
	KindSetupKey        Kind = "setup_key"
	KindPolicy          Kind = "policy"
	KindRoute           Kind = "route"
	KindNameserverGroup Kind = "nameserver_group"
	KindDNSZone         Kind = "dns_zone"
	KindAdminToken      Kind = "admin_token"
	KindUser            Kind = "user"
	KindAccessToken     Kind = "access_token"
)

// Object is any account-owned object the store can persist.
type Object interface {
	ObjectKind() Kind
	ObjectID() string
}

// AllGroupName is the name of the implicit group every peer belongs to.
const AllGroupName = "All"

// DefaultDNSDomain is the account DNS domain unless settings change it.
const DefaultDNSDomain = "petrel.internal"

// Account is one tenant: its overlay network and everything in it.
type Account struct {
	ID        string
	Network   netip.Prefix // a /16 inside 100.64.0.0/10
	Settings  Settings
	CreatedAt time.Time
	// Version is the account's write version in the store: LoadAccounts
	// fills it, every committed mutation checks and increments it
	// (store.Tx.BumpVersion), so a writer holding an older copy is refused.
	// Zero for a new account.
	Version int64

	Peers            map[string]*Peer // by ID
	Groups           map[string]*Group
	SetupKeys        map[string]*SetupKey
	Policies         map[string]*Policy
	Routes           map[string]*Route
	NameserverGroups map[string]*NameserverGroup
	DNSZones         map[string]*DNSZone
	AdminTokens      map[string]*AdminToken
	Users            map[string]*User
	AccessTokens     map[string]*AccessToken
}

// NewAccount returns an empty account with initialised maps.
func NewAccount(id string, network netip.Prefix, now time.Time) *Account {
	return &Account{
		ID: id, Network: network, CreatedAt: now,
		Settings:         Settings{DNSDomain: DefaultDNSDomain},
		Peers:            map[string]*Peer{},
		Groups:           map[string]*Group{},
		SetupKeys:        map[string]*SetupKey{},
		Policies:         map[string]*Policy{},
		Routes:           map[string]*Route{},
		NameserverGroups: map[string]*NameserverGroup{},
		DNSZones:         map[string]*DNSZone{},
		AdminTokens:      map[string]*AdminToken{},
		Users:            map[string]*User{},
		AccessTokens:     map[string]*AccessToken{},
	}
}

// Settings are account-wide settings.
type Settings struct {
	DNSDomain string `json:"dns_domain"`
	// LoginExpiration, when positive, is how long a peer registered by a
	// user (Peer.UserID set) stays logged in after its last user login;
	// after that it needs a new login (setup-key peers never expire).
	LoginExpiration time.Duration `json:"login_expiration"`
}

// PeerMeta is what an agent reports about its host.
type PeerMeta struct {
	Hostname     string `json:"hostname"`
	OS           string `json:"os"`
	Kernel       string `json:"kernel"`
	Version      string `json:"version"` // agent version
	NetstackMode bool   `json:"netstack_mode"`
}

// Peer is one registered machine.
type Peer struct {
	ID         string
	Name       string // display name (hostname)
	DNSLabel   string // unique per account; FQDN = DNSLabel + "." + Settings.DNSDomain
	PublicKey  string // WireGuard key, base64
	IP         netip.Addr
	Meta       PeerMeta
	SetupKeyID string // key it registered with
	UserID     string // user who registered it by signing in; "" for setup-key peers
	Ephemeral  bool
	CreatedAt  time.Time
	LastSeen   time.Time
	LastLogin  time.Time // last sign-in of its user from this peer (user peers only)
	// Disabled is set while the peer's user is blocked or its login has
	// expired: it is left out of every network map until its user signs
	// in again (or is unblocked).
	Disabled bool
}

func (p *Peer) ObjectKind() Kind { return KindPeer }
func (p *Peer) ObjectID() string { return p.ID }

// Group is a named set of peers. The group named AllGroupName is implicit:
// it always holds every peer and cannot be edited or deleted.
type Group struct {
	ID      string
	Name    string
	PeerIDs []string
	// IdPManaged: created from an identity provider's groups claim. Its
	// members are the peers of the users the provider puts in the group,
	// recomputed on each of their logins.
	IdPManaged bool
}

func (g *Group) ObjectKind() Kind { return KindGroup }
func (g *Group) ObjectID() string { return g.ID }

// SetupKey registers new peers. Only a hash of the key is stored.
type SetupKey struct {
	ID         string
	Name       string
	KeyHash    []byte // SHA-256 of the secret key
	KeyPrefix  string // first characters of the key, for display
	Reusable   bool
	UsageLimit int // 0 = unlimited (reusable keys only)
	UsedTimes  int
	ExpiresAt  time.Time // zero = never
	Revoked    bool
	AutoGroups []string // group IDs new peers join
	Ephemeral  bool     // peers are removed when offline for a while
	CreatedAt  time.Time
	LastUsed   time.Time
}

func (k *SetupKey) ObjectKind() Kind { return KindSetupKey }
func (k *SetupKey) ObjectID() string { return k.ID }

// Protocol of a policy rule.
type Protocol string

// Protocols.
const (
	ProtoAll  Protocol = "all"
	ProtoTCP  Protocol = "tcp"
	ProtoUDP  Protocol = "udp"
	ProtoICMP Protocol = "icmp"
)

// Action of a policy rule.
type Action string

// Actions.
const (
	ActionAccept Action = "accept"
	ActionDrop   Action = "drop"
)

// PortRange is an inclusive port range; Start == End for a single port.
type PortRange struct {
	Start uint16 `json:"start"`
	End   uint16 `json:"end"`
}

// Policy is a set of access rules.
type Policy struct {
	ID          string
	Name        string
	Description string
	Enabled     bool
	Rules       []PolicyRule
}

func (p *Policy) ObjectKind() Kind { return KindPolicy }
func (p *Policy) ObjectID() string { return p.ID }

// PolicyRule allows (or drops) traffic from peers of the source groups to
// peers of the destination groups. Bidirectional rules also allow the
// reverse direction.
type PolicyRule struct {
	ID            string      `json:"id"`
	Name          string      `json:"name"`
	Sources       []string    `json:"sources"`      // group IDs
	Destinations  []string    `json:"destinations"` // group IDs
	Protocol      Protocol    `json:"protocol"`
	Ports         []PortRange `json:"ports"` // empty = all ports
	Bidirectional bool        `json:"bidirectional"`
	Action        Action      `json:"action"`
}

// Route makes a network reachable through routing peers. Network 0.0.0.0/0
// or ::/0 makes it an exit node route.
type Route struct {
	ID          string
	Description string
	NetworkID   string // HA group: routes with the same NetworkID and Network are alternatives
	Network     netip.Prefix
	Peer        string   // routing peer ID, or empty when PeerGroups is set
	PeerGroups  []string // group IDs whose members are routing peers
	Groups      []string // distribution: group IDs whose peers receive the route
	Metric      int      // lower is preferred
	Masquerade  bool
	Enabled     bool
	AutoApply   bool // exit nodes: apply without the user choosing it
}

func (r *Route) ObjectKind() Kind { return KindRoute }
func (r *Route) ObjectID() string { return r.ID }

// IsExitNode reports whether the route is a default route.
func (r *Route) IsExitNode() bool { return r.Network.Bits() == 0 }

// NameserverGroup is a set of upstream resolvers for some domains (or all
// domains when Primary) for the peers of Groups.
type NameserverGroup struct {
	ID          string
	Name        string
	Description string
	Nameservers []netip.AddrPort
	Domains     []string
	Primary     bool
	Groups      []string // group IDs
	Enabled     bool
}

func (n *NameserverGroup) ObjectKind() Kind { return KindNameserverGroup }
func (n *NameserverGroup) ObjectID() string { return n.ID }

// DNSRecord is one record of a custom zone.
type DNSRecord struct {
	Name  string `json:"name"` // relative to the zone, "@" for the apex, or fully qualified
	Type  string `json:"type"` // A, AAAA, CNAME, TXT
	Value string `json:"value"`
	TTL   uint32 `json:"ttl"`
}

// DNSZone is a custom zone served by every agent's resolver.
type DNSZone struct {
	ID      string
	Domain  string
	Records []DNSRecord
}

func (z *DNSZone) ObjectKind() Kind { return KindDNSZone }
func (z *DNSZone) ObjectID() string { return z.ID }

// AdminToken authenticates the REST API. Only a hash is stored.
type AdminToken struct {
	ID        string
	Name      string
	TokenHash []byte // SHA-256
	CreatedAt time.Time
}

func (t *AdminToken) ObjectKind() Kind { return KindAdminToken }
func (t *AdminToken) ObjectID() string { return t.ID }

// Role of a user.
type Role string

// Roles. Owners and admins manage everything in the account; users see and
// manage only their own peers and access tokens.
const (
	RoleOwner Role = "owner"
	RoleAdmin Role = "admin"
	RoleUser  Role = "user"
)

// IsAdmin reports whether the role manages the whole account.
func (r Role) IsAdmin() bool { return r == RoleOwner || r == RoleAdmin }

// User is a person who signs in through the identity provider.
type User struct {
	ID      string
	Email   string
	Name    string
	Role    Role
	Issuer  string // identity provider issuer URL
	Subject string // the provider's stable user ID ("sub")
	// Groups are the IDs of the IdP-managed groups the provider put the
	// user in at the last login.
	Groups    []string
	Blocked   bool
	CreatedAt time.Time
	LastLogin time.Time
}

func (u *User) ObjectKind() Kind { return KindUser }
func (u *User) ObjectID() string { return u.ID }

// IdentityKey is the user's unique key in the account: issuer and subject.
func (u *User) IdentityKey() string { return u.Issuer + " " + u.Subject }

// AccessToken is a user's personal access token for the REST API. Only a
// hash is stored; the token acts with its user's role.
type AccessToken struct {
	ID        string
	Name      string
	UserID    string
	TokenHash []byte // SHA-256
	Prefix    string // first characters, for display
	CreatedAt time.Time
	ExpiresAt time.Time // zero = never
}

func (t *AccessToken) ObjectKind() Kind { return KindAccessToken }
func (t *AccessToken) ObjectID() string { return t.ID }

// Event is one audit-log entry: who changed what, and when.
type Event struct {
	Seq        int64 // assigned by the store, increasing per store
	At         time.Time
	Actor      string // "user:ID", "token:ID" (admin token), "peer:ID", "system"
	ActorEmail string // the user's email when the actor is a user
	Action     string // e.g. "group.create", "peer.delete", "user.login"
	TargetKind Kind
	TargetID   string
	Detail     string // short human text, e.g. the object's name
}

// EventFilter selects audit events; zero fields match everything.
type EventFilter struct {
	Before     int64 // only Seq < Before (paging backwards); 0 = from the newest
	Actor      string
	Action     string // exact, or a prefix ending in "." ("peer.")
	TargetKind Kind
	TargetID   string
	Since      time.Time
	Until      time.Time
	Limit      int // at most this many, newest first
}
