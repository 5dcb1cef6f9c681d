package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"petrel/management/model"
	"petrel/management/store"
)

// Run runs the behaviour suite; open must return a store on a fresh, empty
// database (and arrange its cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"LoadAccount", testLoadAccount},
		{"Replace", testReplace},
		{"Conflicts", testConflicts},
		{"DeleteMissing", testDelete},
		{"UnknownAccount", testUnknownAccount},
		{"FailedUpdateRollsBack", testRollback},
		{"TxUsableAfterFailedCall", testTxUsable},
		{"UseSetupKey", testUseSetupKey},
		{"OneOffKeyRace", testOneOffRace},
		{"ServerKey", testServerKey},
		{"SchemaVersion", testSchemaVersion},
		{"StaleVersionRefused", testStaleVersion},
		{"EventsFailedUpdateRollsBack", testEventsRollback},
		{"ListEventsFilters", testListEvents},
		{"ListEventsPaging", testEventsPaging},
		{"EventsPerAccount", testEventsPerAccount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	if got := load(t, s); len(got) != 0 {
		t.Fatalf("fresh store has %d accounts", len(got))
	}
	a, b := fullAccount("acc-a", 10), fullAccount("acc-b", 11)
	empty := model.NewAccount("acc-empty", netip16(12), ts(1700000000, 0))
	save(t, s, a)
	save(t, s, b)
	save(t, s, empty)
	got := load(t, s)
	for _, want := range []*model.Account{a, b, empty} {
		if !reflect.DeepEqual(got[want.ID], want) {
			t.Errorf("account %s round trip:\n got  %s\n want %s", want.ID, dump(got[want.ID]), dump(want))
		}
	}
	// Settings.
	if err := s.Update(ctxFor(t), func(tx store.Tx) error {
		return tx.SaveSettings("acc-a", model.Settings{DNSDomain: "other.example"})
	}); err != nil {
		t.Fatalf("save settings: %v", err)
	}
	if d := load(t, s)["acc-a"].Settings.DNSDomain; d != "other.example" {
		t.Fatalf("settings after save = %q", d)
	}
	err := s.Update(ctxFor(t), func(tx store.Tx) error { return tx.SaveSettings("nope", model.Settings{}) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("save settings of missing account: %v, want ErrNotFound", err)
	}
}

func testReplace(t *testing.T, s store.Store) {
	a := fullAccount("acc", 10)
	save(t, s, a)
	p := *a.Peers["p1"]
	p.IP, p.DNSLabel, p.LastSeen, p.Meta.Version = netip16(10).Addr().Next().Next().Next(), "renamed", ts(1800000000, 1), "0.2.0"
	k := *a.SetupKeys["k1"]
	k.UsedTimes, k.Revoked, k.ExpiresAt = 9, true, time.Time{}
	if err := put(t, s, "acc", &p, &k); err != nil {
		t.Fatalf("replace: %v", err)
	}
	got := load(t, s)["acc"]
	if !reflect.DeepEqual(got.Peers["p1"], &p) || !reflect.DeepEqual(got.SetupKeys["k1"], &k) {
		t.Fatalf("replace not persisted:\n peer %+v\n key %+v", got.Peers["p1"], got.SetupKeys["k1"])
	}
	if len(got.Peers) != 2 {
		t.Fatalf("peers after replace: %d", len(got.Peers))
	}
}

func testConflicts(t *testing.T, s store.Store) {
	a := fullAccount("acc", 10)
	save(t, s, a)
	save(t, s, fullAccount("acc2", 11)) // same labels/names in another account are fine
	p1 := a.Peers["p1"]
	clone := func(f func(p *model.Peer)) *model.Peer {
		p := peer(77, 10)
		f(p)
		return p
	}
	cases := []struct {
		name  string
		obj   model.Object
		field string
	}{
		{"public key", clone(func(p *model.Peer) { p.PublicKey = p1.PublicKey }), "public key"},
		{"ip", clone(func(p *model.Peer) { p.IP = p1.IP }), "ip"},
		{"dns label", clone(func(p *model.Peer) { p.DNSLabel = p1.DNSLabel }), "dns label"},
		{"group name", &model.Group{ID: "g9", Name: model.AllGroupName}, "group name"},
		{"setup key hash", &model.SetupKey{ID: "k9", KeyHash: a.SetupKeys["k1"].KeyHash}, "setup key"},
		{"admin token hash", &model.AdminToken{ID: "t9", TokenHash: a.AdminTokens["t1"].TokenHash}, "admin token"},
		{"user identity", &model.User{ID: "u9", Issuer: "https://idp.example", Subject: "sub-1"}, "user identity"},
		{"access token hash", &model.AccessToken{ID: "at9", TokenHash: a.AccessTokens["at1"].TokenHash}, "access token hash"},
		// Token hashes are unique across accounts: a token names its account.
		{"access token hash of another account", &model.AccessToken{ID: "at9", TokenHash: hash("acc2at1")}, "access token hash"},
	}
	for _, c := range cases {
		err := put(t, s, "acc", c.obj)
		if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: err = %v, want ErrConflict naming %q", c.name, err, c.field)
		}
	}
	err := s.Update(ctxFor(t), func(tx store.Tx) error { return tx.CreateAccount(model.NewAccount("acc", netip16(10), ts(1, 0))) })
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate account: %v, want ErrConflict", err)
	}
	if got := load(t, s)["acc"]; !reflect.DeepEqual(got, a) {
		t.Errorf("conflicting writes changed the account:\n got %s", dump(got))
	}
}

func testDelete(t *testing.T, s store.Store) {
	a := fullAccount("acc", 10)
	save(t, s, a)
	for _, k := range []model.Kind{model.KindPeer, model.KindGroup, model.KindSetupKey, model.KindPolicy,
		model.KindRoute, model.KindNameserverGroup, model.KindDNSZone, model.KindAdminToken,
		model.KindUser, model.KindAccessToken} {
		err := s.Update(ctxFor(t), func(tx store.Tx) error { return tx.Delete("acc", k, "missing") })
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete missing %s: %v, want ErrNotFound", k, err)
		}
		err = s.Update(ctxFor(t), func(tx store.Tx) error { return tx.Delete("other-account", k, "p1") })
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete %s of another account: %v, want ErrNotFound", k, err)
		}
	}
	ids := map[model.Kind]string{model.KindPeer: "p1", model.KindGroup: "g1", model.KindSetupKey: "k1",
		model.KindPolicy: "pol1", model.KindRoute: "rt1", model.KindNameserverGroup: "ns1",
		model.KindDNSZone: "z1", model.KindAdminToken: "t1", model.KindUser: "u1", model.KindAccessToken: "at1"}
	if err := s.Update(ctxFor(t), func(tx store.Tx) error {
		for k, id := range ids {
			if err := tx.Delete("acc", k, id); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	got := load(t, s)["acc"]
	delete(a.Peers, "p1")
	delete(a.Groups, "g1")
	delete(a.SetupKeys, "k1")
	delete(a.Policies, "pol1")
	delete(a.Routes, "rt1")
	delete(a.NameserverGroups, "ns1")
	delete(a.DNSZones, "z1")
	delete(a.AdminTokens, "t1")
	delete(a.Users, "u1")
	delete(a.AccessTokens, "at1")
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("after delete:\n got  %s\n want %s", dump(got), dump(a))
	}
	// The freed unique values are usable again.
	if err := put(t, s, "acc", &model.Peer{ID: "p9", DNSLabel: "alpha", PublicKey: "acc-pub1", IP: netip16(10).Addr().Next()},
		&model.User{ID: "u9", Issuer: "https://idp.example", Subject: "sub-1"},
		&model.AccessToken{ID: "at9", TokenHash: hash("accat1")}); err != nil {
		t.Fatalf("reuse freed peer, user and token values: %v", err)
	}
}

func testUnknownAccount(t *testing.T, s store.Store) {
	if err := put(t, s, "nope", peer(1, 10)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("put into missing account: %v, want ErrNotFound", err)
	}
}

func testRollback(t *testing.T, s store.Store) {
	save(t, s, fullAccount("keep", 11))
	boom := errors.New("boom")
	err := s.Update(ctxFor(t), func(tx store.Tx) error {
		a := fullAccount("gone", 10)
		if err := tx.CreateAccount(a); err != nil {
			return err
		}
		for _, o := range objects(a) {
			if err := tx.Put(a.ID, o); err != nil {
				return err
			}
		}
		if err := tx.Put("keep", peer(5, 11)); err != nil {
			return err
		}
		if err := tx.SaveSettings("keep", model.Settings{DNSDomain: "changed"}); err != nil {
			return err
		}
		if _, _, err := tx.UseSetupKey(hash("keepk1"), ts(1700000000, 0)); err != nil {
			return err
		}
		return fmt.Errorf("fail late: %w", boom)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update err = %v, want the callback's error", err)
	}
	got := load(t, s)
	if len(got) != 1 || !reflect.DeepEqual(got["keep"], fullAccount("keep", 11)) {
		t.Fatalf("failed update left changes behind: %d accounts, keep=%s", len(got), dump(got["keep"]))
	}
}

// testTxUsable: a failed Tx call (here a conflict) changes nothing and the
// transaction stays usable, so a caller can retry with another value.
func testTxUsable(t *testing.T, s store.Store) {
	err := s.Update(ctxFor(t), func(tx store.Tx) error {
		if err := tx.CreateAccount(model.NewAccount("acc", netip16(10), ts(1, 0))); err != nil {
			return err
		}
		if err := tx.Put("acc", peer(1, 10)); err != nil {
			return err
		}
		dup := peer(2, 10)
		dup.DNSLabel = peer(1, 10).DNSLabel
		if err := tx.Put("acc", dup); !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("duplicate label: %v, want ErrConflict", err)
		}
		if err := tx.Delete("acc", model.KindGroup, "missing"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete missing: %v, want ErrNotFound", err)
		}
		if _, _, err := tx.UseSetupKey(hash("none"), ts(2, 0)); !errors.Is(err, store.ErrKeyInvalid) {
			return fmt.Errorf("unknown key: %v, want ErrKeyInvalid", err)
		}
		dup.DNSLabel = "other"
		return tx.Put("acc", dup)
	})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if got := load(t, s)["acc"]; got == nil || len(got.Peers) != 2 || got.Peers["peer-2"].DNSLabel != "other" {
		t.Fatalf("after retry in the same transaction: %s", dump(got))
	}
}

// testStaleVersion: two writers start from the same copy of an account
// (version 0). The first commits (version 1); the second, still holding
// version 0, is refused with store.ErrStale and nothing it wrote is kept.
func testStaleVersion(t *testing.T, s store.Store) {
	a := fullAccount("acc-a", 10)
	save(t, s, a)
	if v := load(t, s)["acc-a"].Version; v != 0 {
		t.Fatalf("new account version %d, want 0", v)
	}
	write := func(expected int64, groupID string) error {
		return s.Update(ctxFor(t), func(tx store.Tx) error {
			if err := tx.BumpVersion("acc-a", expected); err != nil {
				return err
			}
			return tx.Put("acc-a", &model.Group{ID: groupID, Name: groupID})
		})
	}
	if err := write(0, "g-first"); err != nil {
		t.Fatalf("first writer: %v", err)
	}
	err := write(0, "g-stale")
	if !errors.Is(err, store.ErrStale) || !strings.Contains(err.Error(), "stored version 1") {
		t.Fatalf("stale writer: %v, want store.ErrStale (stored version 1)", err)
	}
	got := load(t, s)["acc-a"]
	if got.Version != 1 || got.Groups["g-first"] == nil || got.Groups["g-stale"] != nil {
		t.Fatalf("after stale write: version %d, first group %v, stale group %v; want 1, kept, absent",
			got.Version, got.Groups["g-first"] != nil, got.Groups["g-stale"] != nil)
	}
	if err := write(1, "g-next"); err != nil {
		t.Fatalf("writer at current version: %v", err)
	}
	if v := load(t, s)["acc-a"].Version; v != 2 {
		t.Fatalf("version %d, want 2", v)
	}
	err = s.Update(ctxFor(t), func(tx store.Tx) error { return tx.BumpVersion("missing", 0) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bump missing account: %v, want store.ErrNotFound", err)
	}
}

// testLoadAccount: LoadAccount returns the same account LoadAccounts does,
// with nothing of another account, and ErrNotFound for a missing one.
func testLoadAccount(t *testing.T, s store.Store) {
	save(t, s, fullAccount("acc-a", 10))
	save(t, s, fullAccount("acc-b", 11))
	all := load(t, s)
	for _, id := range []string{"acc-a", "acc-b"} {
		got, err := s.LoadAccount(ctxFor(t), id)
		if err != nil {
			t.Fatalf("load %s: %v", id, err)
		}
		if !reflect.DeepEqual(got, all[id]) {
			t.Errorf("LoadAccount(%s) differs from LoadAccounts:\n got %+v\nwant %+v", id, got, all[id])
		}
	}
	if _, err := s.LoadAccount(ctxFor(t), "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("load missing account: %v, want store.ErrNotFound", err)
	}
}
