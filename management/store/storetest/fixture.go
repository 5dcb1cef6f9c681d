// Package storetest is the behaviour suite every store.Store implementation
// must pass, plus shared benchmarks. Dialect test files call Run, RunReopen
// and the Bench functions with a constructor for a fresh, empty database.
// NewPostgresDB and PostgresDSN create such a database on the test
// PostgreSQL server (PETREL_TEST_POSTGRES_DSN); Log writes to the test log.
//
// Imported only from _test files. Functions start their own goroutines
// and wait for them before returning.
package storetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"petrel/management/model"
	"petrel/management/store"
)

// timeout bounds every store call of the suite (generous: CI is slow).
const timeout = 60 * time.Second

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// ts is a UTC time with nanoseconds, as the store must return it.
func ts(sec int64, nsec int64) time.Time { return time.Unix(sec, nsec).UTC() }

func hash(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// fullAccount returns an account with one fully populated object of every
// kind (and a second peer/group), so a round trip covers every field.
func fullAccount(id string, octet byte) *model.Account {
	a := model.NewAccount(id, netip16(octet), ts(1700000000, 123456789))
	a.Settings = model.Settings{DNSDomain: "corp.example", LoginExpiration: 36*time.Hour + 1}
	ip := func(n byte) netip.Addr { return netip.AddrFrom4([4]byte{100, octet, 0, n}) }
	a.Peers["p1"] = &model.Peer{
		ID: "p1", Name: "alpha", DNSLabel: "alpha", PublicKey: id + "-pub1", IP: ip(1),
		Meta:       model.PeerMeta{Hostname: "alpha.lan", OS: "linux", Kernel: "6.8.0", Version: "0.1.0", NetstackMode: true},
		SetupKeyID: "k1", Ephemeral: true, CreatedAt: ts(1700000001, 1), LastSeen: ts(1700000002, 999999999),
	}
	a.Peers["p2"] = &model.Peer{ID: "p2", Name: "beta", DNSLabel: "beta", PublicKey: id + "-pub2", IP: ip(2),
		UserID: "u1", LastLogin: ts(1700000006, 6), Disabled: true}
	a.Groups["g1"] = &model.Group{ID: "g1", Name: model.AllGroupName, PeerIDs: []string{"p1", "p2"}}
	a.Groups["g2"] = &model.Group{ID: "g2", Name: "empty", PeerIDs: []string{}, IdPManaged: true}
	a.SetupKeys["k1"] = &model.SetupKey{
		ID: "k1", Name: "default", KeyHash: hash(id + "k1"), KeyPrefix: "ABCD", Reusable: true,
		UsageLimit: 10, UsedTimes: 3, ExpiresAt: ts(4000000000, 5), Revoked: false,
		AutoGroups: []string{"g2"}, Ephemeral: true, CreatedAt: ts(1700000003, 7), LastUsed: ts(1700000004, 8),
	}
	a.SetupKeys["k2"] = &model.SetupKey{ID: "k2", Name: "once", KeyHash: hash(id + "k2"), UsageLimit: 1, Revoked: true}
	a.Policies["pol1"] = &model.Policy{ID: "pol1", Name: "default", Description: "all to all", Enabled: true,
		Rules: []model.PolicyRule{{
			ID: "r1", Name: "web", Sources: []string{"g1"}, Destinations: []string{"g2"}, Protocol: model.ProtoTCP,
			Ports: []model.PortRange{{Start: 80, End: 80}, {Start: 8000, End: 8999}}, Bidirectional: true,
			Action: model.ActionAccept,
		}, {ID: "r2", Protocol: model.ProtoICMP, Action: model.ActionDrop}}}
	a.Routes["rt1"] = &model.Route{ID: "rt1", Description: "office", NetworkID: "office",
		Network: netip.MustParsePrefix("10.1.0.0/16"), Peer: "p1", Groups: []string{"g1"}, Metric: 100,
		Masquerade: true, Enabled: true}
	a.Routes["rt2"] = &model.Route{ID: "rt2", Network: netip.MustParsePrefix("::/0"), PeerGroups: []string{"g2"},
		Groups: []string{"g1"}, AutoApply: true}
	a.NameserverGroups["ns1"] = &model.NameserverGroup{ID: "ns1", Name: "corp", Description: "d",
		Nameservers: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.53:53"), netip.MustParseAddrPort("[fe80::1%eth0]:5353")},
		Domains:     []string{"corp.example"}, Primary: false, Groups: []string{"g1"}, Enabled: true}
	a.DNSZones["z1"] = &model.DNSZone{ID: "z1", Domain: "svc.example", Records: []model.DNSRecord{
		{Name: "@", Type: "A", Value: "10.1.2.3", TTL: 300}, {Name: "www", Type: "CNAME", Value: "svc.example.", TTL: 60}}}
	a.AdminTokens["t1"] = &model.AdminToken{ID: "t1", Name: "ci", TokenHash: hash(id + "t1"), CreatedAt: ts(1700000005, 42)}
	a.Users["u1"] = &model.User{ID: "u1", Email: "ana@corp.example", Name: "Ana", Role: model.RoleOwner,
		Issuer: "https://idp.example", Subject: "sub-1", Groups: []string{"g2"}, Blocked: true,
		CreatedAt: ts(1700000007, 7), LastLogin: ts(1700000008, 8)}
	a.Users["u2"] = &model.User{ID: "u2", Role: model.RoleUser, Issuer: "https://idp.example", Subject: "sub-2"}
	a.AccessTokens["at1"] = &model.AccessToken{ID: "at1", Name: "cli", UserID: "u1", TokenHash: hash(id + "at1"),
		Prefix: "ptr_abcd", CreatedAt: ts(1700000009, 9), ExpiresAt: ts(1800000000, 10)}
	a.AccessTokens["at2"] = &model.AccessToken{ID: "at2", UserID: "u2", TokenHash: hash(id + "at2")}
	return a
}

// objects lists every object of a, in an order that satisfies nothing in
// particular (the store has no cross-object constraints).
func objects(a *model.Account) []model.Object {
	var out []model.Object
	for _, o := range a.Peers {
		out = append(out, o)
	}
	for _, o := range a.Groups {
		out = append(out, o)
	}
	for _, o := range a.SetupKeys {
		out = append(out, o)
	}
	for _, o := range a.Policies {
		out = append(out, o)
	}
	for _, o := range a.Routes {
		out = append(out, o)
	}
	for _, o := range a.NameserverGroups {
		out = append(out, o)
	}
	for _, o := range a.DNSZones {
		out = append(out, o)
	}
	for _, o := range a.AdminTokens {
		out = append(out, o)
	}
	for _, o := range a.Users {
		out = append(out, o)
	}
	for _, o := range a.AccessTokens {
		out = append(out, o)
	}
	return out
}

// save writes a and all its objects in one Update.
func save(t testing.TB, s store.Store, a *model.Account) {
	t.Helper()
	err := s.Update(ctxFor(t), func(tx store.Tx) error {
		if err := tx.CreateAccount(a); err != nil {
			return err
		}
		for _, o := range objects(a) {
			if err := tx.Put(a.ID, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("save account %s: %v", a.ID, err)
	}
}

func load(t testing.TB, s store.Store) map[string]*model.Account {
	t.Helper()
	list, err := s.LoadAccounts(ctxFor(t))
	if err != nil {
		t.Fatalf("load accounts: %v", err)
	}
	m := map[string]*model.Account{}
	for _, a := range list {
		m[a.ID] = a
	}
	return m
}

func put(t testing.TB, s store.Store, accountID string, objs ...model.Object) error {
	t.Helper()
	return s.Update(ctxFor(t), func(tx store.Tx) error {
		for _, o := range objs {
			if err := tx.Put(accountID, o); err != nil {
				return err
			}
		}
		return nil
	})
}

func peer(n int, octet byte) *model.Peer {
	return &model.Peer{
		ID: fmt.Sprintf("peer-%d", n), Name: fmt.Sprintf("host-%d", n), DNSLabel: fmt.Sprintf("host-%d", n),
		PublicKey: fmt.Sprintf("pub-%d", n),
		IP:        netip.AddrFrom4([4]byte{100, octet, byte(n >> 8), byte(n)}),
		Meta:      model.PeerMeta{Hostname: fmt.Sprintf("host-%d", n), OS: "linux", Version: "0.1.0"},
		CreatedAt: ts(1700000000, int64(n)), LastSeen: ts(1700000100, int64(n)),
	}
}

// netip16 is the account network 100.<octet>.0.0/16.
func netip16(octet byte) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{100, octet, 0, 0}), 16)
}

// dump renders an account readably for failure messages.
func dump(a *model.Account) string {
	if a == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "{ID:%s Network:%s Settings:%+v CreatedAt:%s", a.ID, a.Network, a.Settings, a.CreatedAt)
	for _, o := range objects(a) {
		fmt.Fprintf(&b, "\n   %s %+v", o.ObjectKind(), o)
	}
	return b.String() + "}"
}
