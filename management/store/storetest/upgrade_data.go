package storetest

import (
	"crypto/sha256"
	"net/netip"
	"time"

	"petrel/management/model"
)

// The upgrade data set: what every testdata/upgrade/vNNNN.sql fixture of
// both dialects holds, as the petrel-server at schema version N stored it.
// It is frozen: fixtures of released versions never change, so neither may
// this (a new field goes into a new fixture version and a new expectation).

// UpgradeServerKey is the server key row every fixture holds.
const UpgradeServerKey = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="

// UpgradeAccountVersion is the stored version of the upgrade data set's
// accounts["acme"] in a fixture of schema version n: accounts had no
// version before schema 2 (migration 0002 starts them at 0); from 2 on the
// fixtures record 7 writes.
func UpgradeAccountVersion(n int) int64 {
	if n < 2 {
		return 0
	}
	return 7
}

// UpgradeKeyHash is the stored hash of the data set's setup key or admin
// token id.
func UpgradeKeyHash(id string) []byte {
	h := sha256.Sum256([]byte("petrel-upgrade-fixture/" + id))
	return h[:]
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// UpgradeAccounts is the data set: "acme", an account in use with objects
// of every kind and setup keys in every state, and "quiet", an account with
// nothing in it. Versions are 0; see UpgradeAccountVersion.
func UpgradeAccounts() []*model.Account {
	a := model.NewAccount("acme", netip.MustParsePrefix("100.90.0.0/16"), utc("2024-05-01T10:00:00.123456789Z"))
	a.Settings = model.Settings{DNSDomain: "acme.internal"}
	a.Peers["p-gw"] = &model.Peer{ID: "p-gw", Name: "gw-1", DNSLabel: "gw-1",
		PublicKey: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", IP: netip.MustParseAddr("100.90.0.1"),
		Meta:       model.PeerMeta{Hostname: "gw-1.acme.lan", OS: "linux", Kernel: "6.8.0-45-generic", Version: "0.3.1"},
		SetupKeyID: "k-ci", CreatedAt: utc("2024-05-01T10:05:00.5Z"), LastSeen: utc("2024-06-30T23:59:59.999999999Z")}
	a.Peers["p-laptop"] = &model.Peer{ID: "p-laptop", Name: "Ana's MacBook", DNSLabel: "anas-macbook",
		PublicKey: "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=", IP: netip.MustParseAddr("100.90.0.2"),
		Meta:       model.PeerMeta{Hostname: "anas-macbook", OS: "darwin", Kernel: "23.5.0", Version: "0.3.0", NetstackMode: true},
		SetupKeyID: "k-once", CreatedAt: utc("2024-05-02T08:00:00Z"), LastSeen: utc("2024-06-29T18:00:00Z")}
	a.Peers["p-ci"] = &model.Peer{ID: "p-ci", Name: "ci-runner-7", DNSLabel: "ci-runner-7",
		PublicKey: "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=", IP: netip.MustParseAddr("100.90.1.7"),
		Meta:       model.PeerMeta{Hostname: "ci-runner-7", OS: "linux", Version: "0.3.1"},
		SetupKeyID: "k-ci", Ephemeral: true, CreatedAt: utc("2024-06-30T12:00:00Z")}
	a.Groups["g-all"] = &model.Group{ID: "g-all", Name: model.AllGroupName, PeerIDs: []string{"p-gw", "p-laptop", "p-ci"}}
	a.Groups["g-servers"] = &model.Group{ID: "g-servers", Name: "servers", PeerIDs: []string{"p-gw"}}
	a.Groups["g-ci"] = &model.Group{ID: "g-ci", Name: "ci", PeerIDs: []string{"p-ci"}}
	a.Groups["g-empty"] = &model.Group{ID: "g-empty", Name: "nobody yet", PeerIDs: []string{}}
	a.SetupKeys["k-ci"] = &model.SetupKey{ID: "k-ci", Name: "ci runners", KeyHash: UpgradeKeyHash("k-ci"),
		KeyPrefix: "7D1C", Reusable: true, UsedTimes: 42, AutoGroups: []string{"g-ci"}, Ephemeral: true,
		CreatedAt: utc("2024-05-01T10:01:00Z"), LastUsed: utc("2024-06-30T12:00:00Z")}
	a.SetupKeys["k-fresh"] = &model.SetupKey{ID: "k-fresh", Name: "next laptops", KeyHash: UpgradeKeyHash("k-fresh"),
		KeyPrefix: "A0B1", Reusable: true, UsageLimit: 10, ExpiresAt: utc("2099-01-01T00:00:00Z"),
		AutoGroups: []string{}, CreatedAt: utc("2024-06-01T00:00:00Z")}
	a.SetupKeys["k-once"] = &model.SetupKey{ID: "k-once", Name: "ana", KeyHash: UpgradeKeyHash("k-once"),
		KeyPrefix: "F00D", UsageLimit: 1, UsedTimes: 1, CreatedAt: utc("2024-05-02T07:55:00Z"),
		LastUsed: utc("2024-05-02T08:00:00Z")}
	a.SetupKeys["k-revoked"] = &model.SetupKey{ID: "k-revoked", Name: "leaked", KeyHash: UpgradeKeyHash("k-revoked"),
		KeyPrefix: "DEAD", Reusable: true, Revoked: true, CreatedAt: utc("2024-05-03T00:00:00Z")}
	a.SetupKeys["k-expired"] = &model.SetupKey{ID: "k-expired", Name: "trial", KeyHash: UpgradeKeyHash("k-expired"),
		KeyPrefix: "0123", Reusable: true, UsageLimit: 5, UsedTimes: 2, ExpiresAt: utc("2024-06-01T00:00:00Z"),
		CreatedAt: utc("2024-05-04T00:00:00Z")}
	a.Policies["pol-default"] = &model.Policy{ID: "pol-default", Name: "Default", Description: "All to All",
		Enabled: true, Rules: []model.PolicyRule{{ID: "r-default", Name: "default", Sources: []string{"g-all"},
			Destinations: []string{"g-all"}, Protocol: model.ProtoAll, Bidirectional: true, Action: model.ActionAccept}}}
	a.Policies["pol-web"] = &model.Policy{ID: "pol-web", Name: "web", Enabled: true, Rules: []model.PolicyRule{
		{ID: "r-https", Name: "https", Sources: []string{"g-all"}, Destinations: []string{"g-servers"},
			Protocol: model.ProtoTCP, Ports: []model.PortRange{{Start: 443, End: 443}, {Start: 8000, End: 8999}},
			Action: model.ActionAccept},
		{ID: "r-ping", Sources: []string{"g-ci"}, Destinations: []string{"g-servers"}, Protocol: model.ProtoICMP,
			Action: model.ActionDrop}}}
	a.Policies["pol-off"] = &model.Policy{ID: "pol-off", Name: "disabled", Rules: []model.PolicyRule{}}
	a.Routes["rt-office"] = &model.Route{ID: "rt-office", Description: "office LAN", NetworkID: "office",
		Network: netip.MustParsePrefix("10.20.0.0/16"), Peer: "p-gw", Groups: []string{"g-all"}, Metric: 100,
		Masquerade: true, Enabled: true}
	a.Routes["rt-exit"] = &model.Route{ID: "rt-exit", Description: "exit", NetworkID: "exit",
		Network: netip.MustParsePrefix("0.0.0.0/0"), PeerGroups: []string{"g-servers"}, Groups: []string{"g-ci"},
		Metric: 9999, Masquerade: true, Enabled: true, AutoApply: true}
	a.Routes["rt-v6"] = &model.Route{ID: "rt-v6", NetworkID: "lab6", Network: netip.MustParsePrefix("2001:db8:20::/48"),
		Peer: "p-gw", Groups: []string{"g-servers"}}
	a.NameserverGroups["ns-corp"] = &model.NameserverGroup{ID: "ns-corp", Name: "corp", Description: "office resolvers",
		Nameservers: []netip.AddrPort{netip.MustParseAddrPort("10.20.0.53:53"), netip.MustParseAddrPort("[2001:db8:20::53]:5353")},
		Domains:     []string{"corp.acme.example", "20.10.in-addr.arpa"}, Groups: []string{"g-all"}, Enabled: true}
	a.NameserverGroups["ns-global"] = &model.NameserverGroup{ID: "ns-global", Name: "global",
		Nameservers: []netip.AddrPort{netip.MustParseAddrPort("9.9.9.9:53")}, Primary: true,
		Groups: []string{"g-ci"}, Enabled: false}
	a.DNSZones["z-svc"] = &model.DNSZone{ID: "z-svc", Domain: "svc.acme.example", Records: []model.DNSRecord{
		{Name: "@", Type: "A", Value: "10.20.0.10", TTL: 300},
		{Name: "api", Type: "AAAA", Value: "2001:db8:20::10", TTL: 60},
		{Name: "www", Type: "CNAME", Value: "svc.acme.example.", TTL: 3600},
		{Name: "@", Type: "TXT", Value: "v=spf1 -all \"quoted\" ünïcode", TTL: 300}}}
	a.AdminTokens["t-admin"] = &model.AdminToken{ID: "t-admin", Name: "bootstrap", TokenHash: UpgradeKeyHash("t-admin"),
		CreatedAt: utc("2024-05-01T10:00:01Z")}
	a.AdminTokens["t-ci"] = &model.AdminToken{ID: "t-ci", Name: "terraform", TokenHash: UpgradeKeyHash("t-ci"),
		CreatedAt: utc("2024-05-20T09:30:00.000000001Z")}

	quiet := model.NewAccount("quiet", netip.MustParsePrefix("100.91.0.0/16"), utc("2025-01-01T00:00:00Z"))
	return []*model.Account{a, quiet}
}

// IdentitySchema is the schema version that added users, personal access
// tokens and the audit log (migration 0003), and with them the peer,
// group and settings fields for identity.
const IdentitySchema = 3

// UpgradeAccountsAt is the data set as a fixture of schema version n holds
// it: UpgradeAccounts, plus from IdentitySchema on a user peer, an
// IdP-managed group, users, access tokens and a login expiration.
func UpgradeAccountsAt(n int) []*model.Account {
	list := UpgradeAccounts()
	if n < IdentitySchema {
		return list
	}
	a := list[0]
	a.Settings.LoginExpiration = 720 * time.Hour
	a.Peers["p-phone"] = &model.Peer{ID: "p-phone", Name: "ana-phone", DNSLabel: "ana-phone",
		PublicKey: "q2ZrX0cHhJ1k3mV2Z4dQ0pS8uYtW6eR5nB7vC9xA1sE=", IP: netip.MustParseAddr("100.90.0.3"),
		Meta:   model.PeerMeta{Hostname: "ana-phone", OS: "android", Version: "0.4.0", NetstackMode: true},
		UserID: "u-ana", CreatedAt: utc("2024-07-01T09:00:00Z"), LastSeen: utc("2024-07-02T10:00:00.25Z"),
		LastLogin: utc("2024-07-01T08:59:30.000000007Z")}
	a.Groups["g-eng"] = &model.Group{ID: "g-eng", Name: "engineering", PeerIDs: []string{"p-phone"}, IdPManaged: true}
	a.Users["u-ana"] = &model.User{ID: "u-ana", Email: "ana@acme.example", Name: "Ana Lima", Role: model.RoleOwner,
		Issuer: "https://idp.acme.example", Subject: "248289761001", Groups: []string{"g-eng"},
		CreatedAt: utc("2024-07-01T08:59:00Z"), LastLogin: utc("2024-07-01T08:59:30.000000007Z")}
	a.Users["u-bob"] = &model.User{ID: "u-bob", Email: "bob@acme.example", Name: "Bob", Role: model.RoleUser,
		Issuer: "https://idp.acme.example", Subject: "bob|42", Blocked: true, CreatedAt: utc("2024-07-03T00:00:00Z")}
	a.AccessTokens["pat-ana"] = &model.AccessToken{ID: "pat-ana", Name: "laptop cli", UserID: "u-ana",
		TokenHash: UpgradeKeyHash("pat-ana"), Prefix: "ptr_7Hk2", CreatedAt: utc("2024-07-01T09:10:00Z"),
		ExpiresAt: utc("2025-07-01T09:10:00Z")}
	a.AccessTokens["pat-ci"] = &model.AccessToken{ID: "pat-ci", Name: "ci", UserID: "u-ana",
		TokenHash: UpgradeKeyHash("pat-ci"), Prefix: "ptr_Q9za", CreatedAt: utc("2024-07-01T09:11:00Z")}
	return list
}

// UpgradeEvents is accounts["acme"]'s audit log in a fixture of schema
// version n, newest first (seqs 3, 2, 1; none before IdentitySchema).
// Account "quiet" has none.
func UpgradeEvents(n int) []model.Event {
	if n < IdentitySchema {
		return []model.Event{}
	}
	return []model.Event{
		{Seq: 3, At: utc("2024-07-01T09:10:00Z"), Actor: "user:u-ana", ActorEmail: "ana@acme.example",
			Action: "access_token.create", TargetKind: model.KindAccessToken, TargetID: "pat-ana", Detail: "laptop cli"},
		{Seq: 2, At: utc("2024-07-01T09:00:00Z"), Actor: "user:u-ana", ActorEmail: "ana@acme.example",
			Action: "peer.create", TargetKind: model.KindPeer, TargetID: "p-phone", Detail: "ana-phone"},
		{Seq: 1, At: utc("2024-07-01T08:59:30.000000007Z"), Actor: "system",
			Action: "user.create", TargetKind: model.KindUser, TargetID: "u-ana", Detail: `Ana "the owner" Lima`},
	}
}
