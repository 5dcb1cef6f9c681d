package management

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"petrel/management/identity"
	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/management/store"
	"petrel/proto/managementpb"
)

// equalStore fails unless nd's in-memory account is deeply equal to the
// stored one (normalised as a reload normalises it) and every peer's map
// in nd's snapshot equals the map built from scratch from the store.
func equalStore(t *testing.T, nd *haNode, acct string) {
	t.Helper()
	stored, err := nd.st.LoadAccount(mgmttest.Ctx(t), acct)
	if err != nil {
		t.Fatal(err)
	}
	fillMaps(stored)
	for _, p := range stored.Peers {
		repairPeer(p)
	}
	st, err := nd.s.account(acct)
	if err != nil {
		t.Fatal(err)
	}
	v := st.view()
	if !reflect.DeepEqual(v.acct, stored) {
		t.Fatalf("%s: memory differs from the database:\nmemory %#v\nstore  %#v", nd.name, v.acct, stored)
	}
	fresh := netmap.Build(stored)
	for id := range stored.Peers {
		got, err1 := v.snap.Map(id)
		want, err2 := fresh.Map(id)
		if err1 != nil || err2 != nil || !proto.Equal(got, want) {
			t.Fatalf("%s: peer %s's map differs from one built from the database (%v, %v)", nd.name, id, err1, err2)
		}
	}
}

// TestHAChangeLogCarriesEveryWrite: every kind of write committed on A —
// registrations through a setup key, groups, policies, routes, nameserver
// groups, zones and their records, settings, tokens, key revocation,
// renames and deletions — reaches B through the change log alone: B never
// reloads the account, its copy is deeply equal to the database, its maps
// equal maps built from the database, and a Sync stream on B follows with
// consecutive deltas.
func TestHAChangeLogCarriesEveryWrite(t *testing.T) {
	nodes, _, acct := startHA(t, 2, noSweep, false, func(c *Config) {
		c.Identity = &IdentityConfig{Verifier: refuseAll{}, Issuer: "https://idp.test", ClientID: "petrel"}
	})
	a, b := nodes[0], nodes[1]
	ctx := mgmttest.Ctx(t)
	reloads := b.s.FollowReloads()

	_, ks, ids := meshAccount(t, a.s, 3)
	delay(t, "B at A's version", func() bool { return memVersion(b, acct) == memVersion(a, acct) })
	str := openStream(t, b.s, ks[0], nil)
	first := str.next(t)
	m, serial := first.GetFull(), first.GetSerial()

	snap, _ := a.s.Snapshot(acct)
	all := allGroup(snap)
	web := mustGroup(t, a.s, acct, "web", ids[0], ids[1])
	put := func(o model.Object) model.Object {
		t.Helper()
		out, err := a.s.Put(ctx, acct, o)
		if err != nil {
			t.Fatalf("put %s: %v", o.ObjectKind(), err)
		}
		return out
	}
	pol := put(&model.Policy{Name: "ssh", Enabled: true, Rules: []model.PolicyRule{{Sources: []string{web.ID},
		Destinations: []string{all.ID}, Protocol: model.ProtoTCP, Ports: []model.PortRange{{Start: 22, End: 22}},
		Action: model.ActionAccept}}}).(*model.Policy)
	put(&model.Route{Network: netip.MustParsePrefix("10.20.0.0/24"), Peer: ids[1], Groups: []string{all.ID}, Enabled: true})
	put(&model.NameserverGroup{Name: "corp", Nameservers: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.53:53")},
		Domains: []string{"corp.example"}, Groups: []string{all.ID}, Enabled: true})
	zone := put(&model.DNSZone{Domain: "lab.example"}).(*model.DNSZone)
	put(&model.DNSZone{ID: zone.ID, Domain: "lab.example", Records: []model.DNSRecord{{Name: "db", Type: "A", Value: "10.0.0.7"}}})
	if err := a.s.UpdateSettings(ctx, acct, model.Settings{DNSDomain: "mesh.example", LoginExpiration: 48 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	key, _ := mustSetupKey(t, a.s, acct, SetupKeyInput{})
	if _, err := a.s.RevokeSetupKey(ctx, acct, key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.CreateAdminToken(ctx, acct, "ci"); err != nil {
		t.Fatal(err)
	}
	put(&model.Peer{ID: ids[2], DNSLabel: "renamed"})
	put(&model.Group{ID: web.ID, Name: "web", PeerIDs: []string{ids[1]}})

	// Users and their tokens: created on A, a token revoked on A stops
	// working on B at once; a user blocked on A is blocked on B.
	alice, err := a.s.SignInWithIdentity(ctx, &identity.Identity{Issuer: "https://idp.test", Subject: "alice",
		Email: "alice@example.com", EmailVerified: true})
	if err != nil {
		t.Fatal(err)
	}
	aliceCtx := WithPrincipal(ctx, alice)
	patA, plainA, err := a.s.CreateAccessToken(aliceCtx, acct, alice.UserID, AccessTokenInput{Name: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	_, plainB, err := a.s.CreateAccessToken(aliceCtx, acct, alice.UserID, AccessTokenInput{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	delay(t, "B at A's version", func() bool { return memVersion(b, acct) == memVersion(a, acct) })
	if _, err := b.s.Authenticate(ctx, plainA); err != nil {
		t.Fatalf("B refuses a token created on A: %v", err)
	}
	if err := a.s.RevokeAccessToken(aliceCtx, acct, alice.UserID, patA.ID); err != nil {
		t.Fatal(err)
	}
	delay(t, "B at A's version", func() bool { return memVersion(b, acct) == memVersion(a, acct) })
	if _, err := b.s.Authenticate(ctx, plainA); err == nil {
		t.Fatal("B accepts an access token revoked on A")
	}
	blocked := true
	if _, err := a.s.UpdateUser(ctx, acct, alice.UserID, UserUpdate{Blocked: &blocked}); err != nil {
		t.Fatal(err)
	}
	delay(t, "B at A's version", func() bool { return memVersion(b, acct) == memVersion(a, acct) })
	if _, err := b.s.Authenticate(ctx, plainB); err == nil {
		t.Fatal("B accepts the token of a user blocked on A")
	}
	adminPlain, err := a.s.CreateAdminToken(ctx, acct, "second")
	if err != nil {
		t.Fatal(err)
	}
	snapA, _ := a.s.Snapshot(acct)
	for _, tok := range snapA.AdminTokens {
		if tok.Name == "second" {
			if _, err := a.s.DeleteAdminToken(ctx, acct, tok.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	delay(t, "B at A's version", func() bool { return memVersion(b, acct) == memVersion(a, acct) })
	if _, ok := b.s.AuthenticateToken(adminPlain); ok {
		t.Fatal("B accepts an admin token deleted on A")
	}

	snapA, _ = a.s.Snapshot(acct)
	for _, del := range []struct {
		k  model.Kind
		id string
	}{{model.KindPolicy, pol.ID}, {model.KindPeer, ids[2]}, {model.KindDNSZone, zone.ID},
		{model.KindNameserverGroup, firstID(snapA.NameserverGroups)}, {model.KindRoute, firstID(snapA.Routes)},
		{model.KindSetupKey, key.ID}} {
		if err := a.s.Delete(ctx, acct, del.k, del.id); err != nil {
			t.Fatalf("delete %s: %v", del.k, err)
		}
	}
	if err := a.s.DeleteUser(ctx, acct, alice.UserID); err != nil {
		t.Fatal(err)
	}

	delay(t, "B at A's version", func() bool { return memVersion(b, acct) == memVersion(a, acct) })
	str.follow(t, m, serial, func() *managementpb.NetworkMap { return a.s.freshMap(t, acct, ids[0]) })
	equalStore(t, b, acct)
	equalStore(t, a, acct)
	if got := b.s.FollowReloads() - reloads; got != 0 {
		t.Errorf("B reloaded the account %d times; want every change from the log", got)
	}
	if b.s.FollowGaps() != 0 {
		t.Errorf("B met %d gaps in the change log", b.s.FollowGaps())
	}
	t.Logf("B applied %d change-log rows", b.s.FollowApplied())
}

// refuseAll is a TokenVerifier for tests that sign users in with
// SignInWithIdentity only.
type refuseAll struct{}

func (refuseAll) Verify(context.Context, string, ...identity.VerifyOption) (*identity.Identity, error) {
	return nil, errors.New("no tokens in this test")
}

func firstID[V any](m map[string]V) string {
	for id := range m {
		return id
	}
	return ""
}

// TestHAChangeLogGapReloads: when the log does not hold every version an
// instance lacks — all of them pruned, one in the middle missing, or the
// newest missing (a version written without the log) — the instance
// reloads the account, never applies around the hole, and ends equal to
// the database; with the log whole again it applies rows again.
func TestHAChangeLogGapReloads(t *testing.T) {
	nodes, dsn, acct := startHA(t, 2, noSweep, false)
	a, b := nodes[0], nodes[1]
	ctx := mgmttest.Ctx(t)
	mustGroup(t, a.s, acct, "before")
	delay(t, "B at A's version", func() bool { return memVersion(b, acct) == memVersion(a, acct) })
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())

	for i, tc := range []struct {
		name  string
		hole  string // deletes rows of the three unheard versions ($1: the first, $2: the last)
		again bool   // B catches up through a new commit (else when asked, with nothing new)
	}{
		{"all pruned", `DELETE FROM account_changes WHERE version BETWEEN $1 AND $2`, true},
		{"middle missing", `DELETE FROM account_changes WHERE version = $1 + 1 AND $2 > 0`, true},
		{"newest missing", `DELETE FROM account_changes WHERE version = $2 AND $1 > 0`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// B stops hearing; A commits three versions; rows go missing.
			b.feed.drop.Store(true)
			dropped := b.feed.dropped.Load()
			first := memVersion(a, acct) + 1
			for j := range 3 {
				mustGroup(t, a.s, acct, fmt.Sprintf("unheard-%d-%d", i, j))
			}
			// Their notifications reach B (and are dropped) before B
			// listens again: a late one would let B catch up early.
			delay(t, "B's listener to drop three notifications", func() bool { return b.feed.dropped.Load() == dropped+3 })
			if _, err := admin.Exec(ctx, tc.hole, first, first+2); err != nil {
				t.Fatal(err)
			}
			reloads, gaps, applied := b.s.FollowReloads(), b.s.FollowGaps(), b.s.FollowApplied()
			b.feed.drop.Store(false)
			if tc.again {
				mustGroup(t, a.s, acct, fmt.Sprintf("heard-%d", i))
			} else {
				b.s.CatchUp(ctx, acct)
			}
			delay(t, "B at A's version", func() bool { return memVersion(b, acct) == memVersion(a, acct) })
			equalStore(t, b, acct)
			if b.s.FollowGaps() == gaps || b.s.FollowReloads() == reloads || b.s.FollowApplied() != applied {
				t.Fatalf("hole not noticed: gaps %d → %d, reloads %d → %d, rows applied %d → %d",
					gaps, b.s.FollowGaps(), reloads, b.s.FollowReloads(), applied, b.s.FollowApplied())
			}
		})
	}

	applied := b.s.FollowApplied()
	mustGroup(t, a.s, acct, "logged")
	delay(t, "B at A's version", func() bool { return memVersion(b, acct) == memVersion(a, acct) })
	if b.s.FollowApplied() != applied+1 {
		t.Fatalf("after the reloads B applied %d rows for one change, want 1", b.s.FollowApplied()-applied)
	}
	equalStore(t, b, acct)
}

// TestContinues: the rows must be base+1, base+2, … without a hole.
func TestContinues(t *testing.T) {
	rows := func(vs ...int64) []store.AccountChange {
		var out []store.AccountChange
		for _, v := range vs {
			out = append(out, store.AccountChange{Version: v})
		}
		return out
	}
	for _, tc := range []struct {
		rows []store.AccountChange
		want bool
	}{
		{rows(5, 6, 7), true}, {rows(5), true}, {nil, false}, {rows(6, 7), false},
		{rows(5, 7), false}, {rows(5, 6, 6), false}, {rows(4, 5), false},
	} {
		if got := continues(tc.rows, 4); got != tc.want {
			t.Errorf("continues(%v, 4) = %v, want %v", tc.rows, got, tc.want)
		}
	}
}

// TestApplyOpRefusesUnknown: a write the follower does not know is an
// error (the account is reloaded), not silently dropped.
func TestApplyOpRefusesUnknown(t *testing.T) {
	a := model.NewAccount("a", netip.MustParsePrefix("100.64.0.0/16"), time.Now())
	for _, op := range []store.ChangeOp{{}, {Delete: &store.ObjectRef{Kind: "planet", ID: "x"}}} {
		if err := applyOp(a, op); err == nil {
			t.Errorf("applyOp(%+v) accepted", op)
		}
	}
}

// TestHAChangeLogRollbackWritesNothing: a transaction that advanced the
// version and wrote, then failed, leaves no change-log row; a committed
// one leaves exactly one, of its version, with its writes in order.
func TestHAChangeLogRollbackWritesNothing(t *testing.T) {
	nodes, _, acct := startHA(t, 1, noSweep, false)
	a := nodes[0]
	ctx := mgmttest.Ctx(t)
	v := memVersion(a, acct)
	write := func(fail error) error {
		return a.st.Update(ctx, func(tx store.Tx) error {
			if err := tx.BumpVersion(acct, v); err != nil {
				return err
			}
			if err := tx.Put(acct, &model.Group{ID: "g-x", Name: "x"}); err != nil {
				return err
			}
			if err := tx.SaveSettings(acct, model.Settings{DNSDomain: "x.example"}); err != nil {
				return err
			}
			if err := tx.Delete(acct, model.KindGroup, "g-x"); err != nil {
				return err
			}
			return fail
		})
	}
	if err := write(errors.New("refused")); err == nil {
		t.Fatal("failing transaction committed")
	}
	if rows, err := a.st.Changes(ctx, acct, v, 10); err != nil || len(rows) != 0 {
		t.Fatalf("change log after a rolled-back write: %d rows, %v; want none", len(rows), err)
	}
	if err := write(nil); err != nil {
		t.Fatal(err)
	}
	rows, err := a.st.Changes(ctx, acct, v, 10)
	if err != nil || len(rows) != 1 || rows[0].Version != v+1 {
		t.Fatalf("change log after a commit: %+v, %v; want one row of version %d", rows, err, v+1)
	}
	ops := rows[0].Ops
	if len(ops) != 3 || ops[0].Put == nil || ops[0].Put.(*model.Group).Name != "x" ||
		ops[1].Settings == nil || ops[1].Settings.DNSDomain != "x.example" ||
		ops[2].Delete == nil || *ops[2].Delete != (store.ObjectRef{Kind: model.KindGroup, ID: "g-x"}) {
		t.Fatalf("version %d's writes: %+v; want put, settings, delete", v+1, ops)
	}
}
