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
	nodes, _, acct := startHA(t, 2, noSweep, false)
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
	for _, del := range []struct {
		k  model.Kind
		id string
	}{{model.KindPolicy, pol.ID}, {model.KindPeer, ids[2]}} {
		if err := a.s.Delete(ctx, acct, del.k, del.id); err != nil {
			t.Fatalf("delete %s: %v", del.k, err)
		}
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

// TestHAChangeLogGapReloads: when the log no longer holds the versions an
// instance lacks (pruned), it reloads the account and ends equal to the
// database; with the log back in place it applies rows again.
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
	// B stops hearing; A commits three versions; their log rows vanish.
	b.feed.drop.Store(true)
	for i := range 3 {
		mustGroup(t, a.s, acct, fmt.Sprintf("unlogged-%d", i))
	}
	if _, err := admin.Exec(ctx, `DELETE FROM account_changes`); err != nil {
		t.Fatal(err)
	}
	reloads, gaps := b.s.FollowReloads(), b.s.FollowGaps()
	b.feed.drop.Store(false)
	mustGroup(t, a.s, acct, "after")
	delay(t, "B at A's version", func() bool { return memVersion(b, acct) == memVersion(a, acct) })
	equalStore(t, b, acct)
	if b.s.FollowGaps() == gaps || b.s.FollowReloads() == reloads {
		t.Fatalf("gap not noticed: gaps %d → %d, reloads %d → %d", gaps, b.s.FollowGaps(), reloads, b.s.FollowReloads())
	}
	applied := b.s.FollowApplied()
	mustGroup(t, a.s, acct, "logged")
	delay(t, "B at A's version", func() bool { return memVersion(b, acct) == memVersion(a, acct) })
	if b.s.FollowApplied() != applied+1 {
		t.Fatalf("after the reload B applied %d rows for one change, want 1", b.s.FollowApplied()-applied)
	}
	equalStore(t, b, acct)
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
