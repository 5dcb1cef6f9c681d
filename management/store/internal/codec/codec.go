// Package codec maps model objects to the dialect-neutral row shape both SQL
// stores persist: a few indexed columns (the ones used by unique constraints
// and lookups) plus a JSON document holding every other field. It holds no
// SQL; each dialect package writes its own statements around Row.
//
// Imported only by management/store/sqlite and management/store/postgres.
// All functions are pure and safe for concurrent use.
package codec

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"petrel/management/model"
	"petrel/management/store"
)

// Row is one object as stored. Only the columns of the object's kind are set.
type Row struct {
	Kind model.Kind
	ID   string

	// peers
	PublicKey string
	IP        string
	DNSLabel  string
	// groups
	Name string
	// users: User.IdentityKey()
	IdPKey string
	// setup_keys (KeyHash), admin_tokens and access_tokens (TokenHash)
	// share Hash
	Hash       []byte
	Reusable   bool
	Revoked    bool
	UsageLimit int64
	UsedTimes  int64
	ExpiresAt  *int64 // unix nanoseconds; nil = never
	LastUsed   *int64 // unix nanoseconds; nil = never

	// Data is the JSON document with the remaining fields.
	Data []byte
}

// Tables maps each kind to its table name (quoted where a dialect needs it
// is the dialect's business; "groups" is quoted by both).
var Tables = map[model.Kind]string{
	model.KindPeer:            "peers",
	model.KindGroup:           "groups",
	model.KindSetupKey:        "setup_keys",
	model.KindPolicy:          "policies",
	model.KindRoute:           "routes",
	model.KindNameserverGroup: "nameserver_groups",
	model.KindDNSZone:         "dns_zones",
	model.KindAdminToken:      "admin_tokens",
	model.KindUser:            "users",
	model.KindAccessToken:     "access_tokens",
}

// Kinds lists every kind in a stable order.
var Kinds = []model.Kind{
	model.KindPeer, model.KindGroup, model.KindSetupKey, model.KindPolicy,
	model.KindRoute, model.KindNameserverGroup, model.KindDNSZone, model.KindAdminToken,
	model.KindUser, model.KindAccessToken,
}

// ErrUnknownKind is returned for an object kind the store does not know.
var ErrUnknownKind = errors.New("unknown object kind")

// Nanos converts t to unix nanoseconds, nil for the zero time.
func Nanos(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := t.UnixNano()
	return &n
}

// FromNanos is the inverse of Nanos; times come back in UTC.
func FromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

// CheckTime rejects times that unix nanoseconds cannot represent exactly.
func CheckTime(t time.Time) error {
	if t.IsZero() {
		return nil
	}
	if t.Year() < 1678 || t.Year() > 2261 {
		return fmt.Errorf("time %s out of storable range", t)
	}
	return nil
}

// utc normalises a decoded time: zero stays zero, anything else is UTC
// without a monotonic reading.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

type peerDoc struct {
	Name       string         `json:"name"`
	Meta       model.PeerMeta `json:"meta"`
	SetupKeyID string         `json:"setup_key_id"`
	Ephemeral  bool           `json:"ephemeral"`
	CreatedAt  time.Time      `json:"created_at"`
	LastSeen   time.Time      `json:"last_seen"`
	// Since schema 3; absent in older rows (and for setup-key peers).
	UserID    string    `json:"user_id,omitempty"`
	LastLogin time.Time `json:"last_login,omitzero"`
	Disabled  bool      `json:"disabled,omitempty"`
}

type groupDoc struct {
	PeerIDs    []string `json:"peer_ids"`
	IdPManaged bool     `json:"idp_managed,omitempty"` // since schema 3
}

type setupKeyDoc struct {
	Name       string    `json:"name"`
	KeyPrefix  string    `json:"key_prefix"`
	AutoGroups []string  `json:"auto_groups"`
	Ephemeral  bool      `json:"ephemeral"`
	CreatedAt  time.Time `json:"created_at"`
}

type policyDoc struct {
	Name        string             `json:"name"`
	Description string             `json:"description"`
	Enabled     bool               `json:"enabled"`
	Rules       []model.PolicyRule `json:"rules"`
}

type routeDoc struct {
	Description string       `json:"description"`
	NetworkID   string       `json:"network_id"`
	Network     netip.Prefix `json:"network"`
	Peer        string       `json:"peer"`
	PeerGroups  []string     `json:"peer_groups"`
	Groups      []string     `json:"groups"`
	Metric      int          `json:"metric"`
	Masquerade  bool         `json:"masquerade"`
	Enabled     bool         `json:"enabled"`
	AutoApply   bool         `json:"auto_apply"`
}

type nsGroupDoc struct {
	Name        string           `json:"name"`
	Description string           `json:"description"`
	Nameservers []netip.AddrPort `json:"nameservers"`
	Domains     []string         `json:"domains"`
	Primary     bool             `json:"primary"`
	Groups      []string         `json:"groups"`
	Enabled     bool             `json:"enabled"`
}

type dnsZoneDoc struct {
	Domain  string            `json:"domain"`
	Records []model.DNSRecord `json:"records"`
}

type adminTokenDoc struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

type userDoc struct {
	Email     string     `json:"email"`
	Name      string     `json:"name"`
	Role      model.Role `json:"role"`
	Issuer    string     `json:"issuer"`
	Subject   string     `json:"subject"`
	Groups    []string   `json:"groups"`
	Blocked   bool       `json:"blocked"`
	CreatedAt time.Time  `json:"created_at"`
	LastLogin time.Time  `json:"last_login"`
}

type accessTokenDoc struct {
	Name      string    `json:"name"`
	UserID    string    `json:"user_id"`
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Encode turns an object into its row. A non-reusable setup key is stored
// with UsageLimit 1 whatever the object says.
func Encode(obj model.Object) (Row, error) {
	r := Row{Kind: obj.ObjectKind(), ID: obj.ObjectID()}
	if r.ID == "" {
		return r, fmt.Errorf("encode %s: empty id", r.Kind)
	}
	var doc any
	switch o := obj.(type) {
	case *model.Peer:
		if !o.IP.IsValid() {
			return r, fmt.Errorf("encode peer %s: no ip", o.ID)
		}
		if err := errors.Join(CheckTime(o.CreatedAt), CheckTime(o.LastSeen), CheckTime(o.LastLogin)); err != nil {
			return r, fmt.Errorf("encode peer %s: %w", o.ID, err)
		}
		r.PublicKey, r.IP, r.DNSLabel = o.PublicKey, o.IP.String(), o.DNSLabel
		doc = peerDoc{o.Name, o.Meta, o.SetupKeyID, o.Ephemeral, o.CreatedAt, o.LastSeen, o.UserID, o.LastLogin, o.Disabled}
	case *model.Group:
		r.Name = o.Name
		doc = groupDoc{o.PeerIDs, o.IdPManaged}
	case *model.SetupKey:
		if len(o.KeyHash) == 0 {
			return r, fmt.Errorf("encode setup key %s: empty hash", o.ID)
		}
		if err := errors.Join(CheckTime(o.CreatedAt), CheckTime(o.ExpiresAt), CheckTime(o.LastUsed)); err != nil {
			return r, fmt.Errorf("encode setup key %s: %w", o.ID, err)
		}
		r.Hash, r.Reusable, r.Revoked = o.KeyHash, o.Reusable, o.Revoked
		r.UsageLimit, r.UsedTimes = int64(o.UsageLimit), int64(o.UsedTimes)
		if !o.Reusable {
			r.UsageLimit = 1
		}
		r.ExpiresAt, r.LastUsed = Nanos(o.ExpiresAt), Nanos(o.LastUsed)
		doc = setupKeyDoc{o.Name, o.KeyPrefix, o.AutoGroups, o.Ephemeral, o.CreatedAt}
	case *model.Policy:
		doc = policyDoc{o.Name, o.Description, o.Enabled, o.Rules}
	case *model.Route:
		doc = routeDoc{o.Description, o.NetworkID, o.Network, o.Peer, o.PeerGroups, o.Groups,
			o.Metric, o.Masquerade, o.Enabled, o.AutoApply}
	case *model.NameserverGroup:
		doc = nsGroupDoc{o.Name, o.Description, o.Nameservers, o.Domains, o.Primary, o.Groups, o.Enabled}
	case *model.DNSZone:
		doc = dnsZoneDoc{o.Domain, o.Records}
	case *model.AdminToken:
		if len(o.TokenHash) == 0 {
			return r, fmt.Errorf("encode admin token %s: empty hash", o.ID)
		}
		if err := CheckTime(o.CreatedAt); err != nil {
			return r, fmt.Errorf("encode admin token %s: %w", o.ID, err)
		}
		r.Hash = o.TokenHash
		doc = adminTokenDoc{o.Name, o.CreatedAt}
	case *model.User:
		if o.Issuer == "" || o.Subject == "" {
			return r, fmt.Errorf("encode user %s: empty issuer or subject", o.ID)
		}
		if err := errors.Join(CheckTime(o.CreatedAt), CheckTime(o.LastLogin)); err != nil {
			return r, fmt.Errorf("encode user %s: %w", o.ID, err)
		}
		r.IdPKey = o.IdentityKey()
		doc = userDoc{o.Email, o.Name, o.Role, o.Issuer, o.Subject, o.Groups, o.Blocked, o.CreatedAt, o.LastLogin}
	case *model.AccessToken:
		if len(o.TokenHash) == 0 {
			return r, fmt.Errorf("encode access token %s: empty hash", o.ID)
		}
		if err := errors.Join(CheckTime(o.CreatedAt), CheckTime(o.ExpiresAt)); err != nil {
			return r, fmt.Errorf("encode access token %s: %w", o.ID, err)
		}
		r.Hash = o.TokenHash
		doc = accessTokenDoc{o.Name, o.UserID, o.Prefix, o.CreatedAt, o.ExpiresAt}
	default:
		return r, fmt.Errorf("encode %T: %w", obj, ErrUnknownKind)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return r, fmt.Errorf("encode %s %s: %w", r.Kind, r.ID, err)
	}
	r.Data = data
	return r, nil
}

// Decode turns a row back into an object.
func Decode(r Row) (model.Object, error) {
	var (
		obj model.Object
		err error
	)
	switch r.Kind {
	case model.KindPeer:
		obj, err = decodeDoc(r, func(d peerDoc) (model.Object, error) {
			ip, err := netip.ParseAddr(r.IP)
			if err != nil {
				return nil, err
			}
			return &model.Peer{ID: r.ID, Name: d.Name, DNSLabel: r.DNSLabel, PublicKey: r.PublicKey, IP: ip,
				Meta: d.Meta, SetupKeyID: d.SetupKeyID, UserID: d.UserID, Ephemeral: d.Ephemeral,
				CreatedAt: utc(d.CreatedAt), LastSeen: utc(d.LastSeen), LastLogin: utc(d.LastLogin), Disabled: d.Disabled}, nil
		})
	case model.KindGroup:
		obj, err = decodeDoc(r, func(d groupDoc) (model.Object, error) {
			return &model.Group{ID: r.ID, Name: r.Name, PeerIDs: d.PeerIDs, IdPManaged: d.IdPManaged}, nil
		})
	case model.KindSetupKey:
		obj, err = decodeDoc(r, func(d setupKeyDoc) (model.Object, error) {
			return &model.SetupKey{ID: r.ID, Name: d.Name, KeyHash: r.Hash, KeyPrefix: d.KeyPrefix,
				Reusable: r.Reusable, UsageLimit: int(r.UsageLimit), UsedTimes: int(r.UsedTimes),
				ExpiresAt: FromNanos(r.ExpiresAt), Revoked: r.Revoked, AutoGroups: d.AutoGroups,
				Ephemeral: d.Ephemeral, CreatedAt: utc(d.CreatedAt), LastUsed: FromNanos(r.LastUsed)}, nil
		})
	case model.KindPolicy:
		obj, err = decodeDoc(r, func(d policyDoc) (model.Object, error) {
			return &model.Policy{ID: r.ID, Name: d.Name, Description: d.Description, Enabled: d.Enabled, Rules: d.Rules}, nil
		})
	case model.KindRoute:
		obj, err = decodeDoc(r, func(d routeDoc) (model.Object, error) {
			return &model.Route{ID: r.ID, Description: d.Description, NetworkID: d.NetworkID, Network: d.Network,
				Peer: d.Peer, PeerGroups: d.PeerGroups, Groups: d.Groups, Metric: d.Metric,
				Masquerade: d.Masquerade, Enabled: d.Enabled, AutoApply: d.AutoApply}, nil
		})
	case model.KindNameserverGroup:
		obj, err = decodeDoc(r, func(d nsGroupDoc) (model.Object, error) {
			return &model.NameserverGroup{ID: r.ID, Name: d.Name, Description: d.Description,
				Nameservers: d.Nameservers, Domains: d.Domains, Primary: d.Primary, Groups: d.Groups,
				Enabled: d.Enabled}, nil
		})
	case model.KindDNSZone:
		obj, err = decodeDoc(r, func(d dnsZoneDoc) (model.Object, error) {
			return &model.DNSZone{ID: r.ID, Domain: d.Domain, Records: d.Records}, nil
		})
	case model.KindAdminToken:
		obj, err = decodeDoc(r, func(d adminTokenDoc) (model.Object, error) {
			return &model.AdminToken{ID: r.ID, Name: d.Name, TokenHash: r.Hash, CreatedAt: utc(d.CreatedAt)}, nil
		})
	case model.KindUser:
		obj, err = decodeDoc(r, func(d userDoc) (model.Object, error) {
			u := &model.User{ID: r.ID, Email: d.Email, Name: d.Name, Role: d.Role, Issuer: d.Issuer,
				Subject: d.Subject, Groups: d.Groups, Blocked: d.Blocked, CreatedAt: utc(d.CreatedAt),
				LastLogin: utc(d.LastLogin)}
			if u.IdentityKey() != r.IdPKey {
				return nil, fmt.Errorf("identity %q does not match its column %q", u.IdentityKey(), r.IdPKey)
			}
			return u, nil
		})
	case model.KindAccessToken:
		obj, err = decodeDoc(r, func(d accessTokenDoc) (model.Object, error) {
			return &model.AccessToken{ID: r.ID, Name: d.Name, UserID: d.UserID, TokenHash: r.Hash,
				Prefix: d.Prefix, CreatedAt: utc(d.CreatedAt), ExpiresAt: utc(d.ExpiresAt)}, nil
		})
	default:
		err = ErrUnknownKind
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", r.Kind, r.ID, err)
	}
	return obj, nil
}

// decodeDoc unmarshals r's JSON document into a D and builds the object.
func decodeDoc[D any](r Row, build func(D) (model.Object, error)) (model.Object, error) {
	var d D
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return nil, err
	}
	return build(d)
}

// AddTo inserts a decoded object into the matching map of a.
func AddTo(a *model.Account, obj model.Object) { a.PutObject(obj) }

// EncodeSettings and DecodeSettings store account settings as JSON (the
// model's tags; LoginExpiration is an integer of nanoseconds, so it
// round-trips exactly, and settings saved before it existed decode it as 0).
func EncodeSettings(s model.Settings) ([]byte, error) { return json.Marshal(s) }

// DecodeSettings is the inverse of EncodeSettings.
func DecodeSettings(b []byte) (model.Settings, error) {
	var s model.Settings
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decode settings: %w", err)
	}
	return s, nil
}

// KeyUseError classifies why a setup key row could not be used at now.
// It returns nil when the key is usable.
func KeyUseError(r Row, now time.Time) error {
	switch {
	case r.Revoked:
		return store.ErrKeyRevoked
	case r.ExpiresAt != nil && *r.ExpiresAt <= now.UnixNano():
		return store.ErrKeyExpired
	case r.UsageLimit > 0 && r.UsedTimes >= r.UsageLimit:
		return store.ErrKeyExhausted
	}
	return nil
}

// EncodeNetwork is the stored text of an account network ("" when unset).
func EncodeNetwork(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

// DecodeAccount builds an account (all maps initialised) from its row.
func DecodeAccount(id, network string, created *int64, settings []byte) (*model.Account, error) {
	var p netip.Prefix
	if network != "" {
		var err error
		if p, err = netip.ParsePrefix(network); err != nil {
			return nil, fmt.Errorf("decode account %s network: %w", id, err)
		}
	}
	a := model.NewAccount(id, p, FromNanos(created))
	s, err := DecodeSettings(settings)
	if err != nil {
		return nil, fmt.Errorf("decode account %s: %w", id, err)
	}
	a.Settings = s
	return a, nil
}
