package storetest

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"testing"
	"time"

	"petrel/management/model"
	"petrel/management/store"
)

// Upgrade is what RunUpgrade needs from a dialect.
type Upgrade struct {
	// Latest is the newest schema version this binary migrates to.
	Latest int
	// Fixtures holds the dialect's upgrade fixtures: vNNNN.sql inserts the
	// upgrade data set (UpgradeAccounts, UpgradeServerKey) as the
	// petrel-server at schema version NNNN stored it.
	Fixtures fs.FS
	// NewDB creates a fresh, empty database and arranges its cleanup.
	NewDB func(t *testing.T) UpgradeDB
}

// UpgradeDB is one database for RunUpgrade.
type UpgradeDB struct {
	DB // Open opens it with this binary; Exec runs a fixture file.
	// OpenAt opens it applying only migrations 1..n, as the petrel-server
	// whose newest migration was n did.
	OpenAt func(n int) (store.Store, error)
}

var fixtureName = regexp.MustCompile(`^v(\d{4})\.sql$`)

// CheckUpgradeFixtures fails unless fixtures holds exactly one vNNNN.sql
// for every schema version 1..latest: a new migration must come with a
// fixture of the data as its version stores it, so that the next migration
// is tested against real data of that version.
func CheckUpgradeFixtures(t *testing.T, fixtures fs.FS, latest int) {
	ents, err := fs.ReadDir(fixtures, ".")
	if err != nil {
		t.Fatalf("read upgrade fixtures: %v", err)
	}
	have := map[int]bool{}
	for _, e := range ents {
		m := fixtureName.FindStringSubmatch(e.Name())
		if m == nil {
			t.Errorf("upgrade fixture %q: name must be vNNNN.sql", e.Name())
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if n < 1 || n > latest {
			t.Errorf("upgrade fixture %s: no migration %04d (newest is %04d)", e.Name(), n, latest)
		}
		have[n] = true
	}
	for n := 1; n <= latest; n++ {
		if !have[n] {
			t.Errorf("migration %04d has no upgrade fixture v%04d.sql: add one that inserts "+
				"storetest.UpgradeAccounts as schema version %d stores them", n, n, n)
		}
	}
}

// RunUpgrade opens, with this binary, a database left at every schema
// version 0 (empty) .. Latest by an older one and holding the upgrade data
// set (inserted through the store when the database was empty), and checks
// that the data is all there and usable: loaded intact with the server key,
// setup-key and constraint semantics kept, then mutated, reloaded, and
// reloaded again after a reopen.
func RunUpgrade(t *testing.T, u Upgrade) {
	for n := 0; n <= u.Latest; n++ {
		t.Run(fmt.Sprintf("FromV%d", n), func(t *testing.T) { testUpgradeFrom(t, u, n) })
	}
}

func testUpgradeFrom(t *testing.T, u Upgrade, n int) {
	db := u.NewDB(t)
	if n > 0 {
		old, err := db.OpenAt(n)
		if err != nil {
			t.Fatalf("open with migrations up to %d: %v", n, err)
		}
		old.Close()
		sql, err := fs.ReadFile(u.Fixtures, fmt.Sprintf("v%04d.sql", n))
		if err != nil {
			t.Fatalf("read fixture: %v", err)
		}
		if err := db.Exec(string(sql)); err != nil {
			t.Fatalf("load fixture v%04d.sql: %v", n, err)
		}
	}
	s := mustOpen(t, db.DB)
	defer func() { s.Close() }()
	if v, err := s.SchemaVersion(ctxFor(t)); err != nil || v != u.Latest {
		t.Fatalf("schema version after upgrade from %d: %d, %v; want %d", n, v, err, u.Latest)
	}
	data := n // the schema version whose data set the database holds
	if n == 0 {
		data = u.Latest
	}
	want := map[string]*model.Account{}
	for _, a := range UpgradeAccountsAt(data) {
		want[a.ID] = a
	}
	wantEvents := UpgradeEvents(data)
	if n == 0 {
		if got := load(t, s); len(got) != 0 {
			t.Fatalf("empty database has %d accounts", len(got))
		}
		for _, a := range UpgradeAccountsAt(data) {
			save(t, s, a)
		}
		appendEvents(t, s, "acme", wantEvents)
	}
	want["acme"].Version = UpgradeAccountVersion(n)
	checkAccounts(t, "after upgrade", s, want)
	checkEvents(t, "after upgrade", s, "acme", wantEvents)
	checkEvents(t, "after upgrade", s, "quiet", nil)
	key, err := s.ServerKey(ctxFor(t))
	if err != nil {
		t.Fatalf("server key: %v", err)
	}
	if n > 0 && key.String() != UpgradeServerKey {
		t.Fatal("server key changed by the upgrade (agents would no longer trust the server)")
	}

	added := mutateUpgraded(t, s, want["acme"], data)
	checkAccounts(t, "after mutating the upgraded data", s, want)
	wantEvents = checkAppended(t, s, "acme", added, wantEvents)

	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s = mustOpen(t, db.DB)
	if v, err := s.SchemaVersion(ctxFor(t)); err != nil || v != u.Latest {
		t.Fatalf("schema version after reopen: %d, %v; want %d", v, err, u.Latest)
	}
	checkAccounts(t, "after reopen", s, want)
	checkEvents(t, "after reopen", s, "acme", wantEvents)
	if k, err := s.ServerKey(ctxFor(t)); err != nil || k != key {
		t.Fatalf("server key after reopen: same=%v err=%v", k == key, err)
	}
}

// mutateUpgraded changes the upgraded acme account (holding the data set of
// schema version data) through every kind of write, applies the same
// changes to want, and returns the audit event it appended.
func mutateUpgraded(t *testing.T, s store.Store, want *model.Account, data int) model.Event {
	t.Helper()
	now := ts(1800000000, 42)
	newPeer := &model.Peer{ID: "p-new", Name: "new", DNSLabel: "new", PublicKey: "new-key",
		IP: netip.MustParseAddr("100.90.2.1"), Meta: model.PeerMeta{OS: "linux"}, SetupKeyID: "k-fresh", CreatedAt: now}
	servers := *want.Groups["g-servers"]
	servers.PeerIDs = append(append([]string{}, servers.PeerIDs...), "p-new")
	ssh := &model.Policy{ID: "pol-ssh", Name: "ssh", Enabled: true, Rules: []model.PolicyRule{{ID: "r-ssh",
		Sources: []string{"g-ci"}, Destinations: []string{"g-servers"}, Protocol: model.ProtoTCP,
		Ports: []model.PortRange{{Start: 22, End: 22}}, Action: model.ActionAccept}}}
	settings := model.Settings{DNSDomain: "acme.example", LoginExpiration: 90*time.Minute + 1}
	carol := &model.User{ID: "u-carol", Email: "carol@acme.example", Role: model.RoleAdmin,
		Issuer: "https://idp.acme.example", Subject: "carol", Groups: []string{}, CreatedAt: now, LastLogin: now}
	pat := &model.AccessToken{ID: "pat-carol", Name: "terraform", UserID: "u-carol",
		TokenHash: UpgradeKeyHash("pat-carol"), Prefix: "ptr_c4r0", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	ev := model.Event{At: now, Actor: "user:u-carol", ActorEmail: carol.Email, Action: "access_token.create",
		TargetKind: model.KindAccessToken, TargetID: pat.ID, Detail: pat.Name}
	base := want.Version
	err := s.Update(ctxFor(t), func(tx store.Tx) error {
		if err := tx.BumpVersion("acme", base); err != nil {
			return err
		}
		for _, o := range []model.Object{newPeer, &servers, ssh, carol, pat} {
			if err := tx.Put("acme", o); err != nil {
				return err
			}
		}
		if err := tx.AppendEvent("acme", ev); err != nil {
			return err
		}
		if err := tx.Delete("acme", model.KindRoute, "rt-exit"); err != nil {
			return err
		}
		return tx.SaveSettings("acme", settings)
	})
	if err != nil {
		t.Fatalf("mutate upgraded account: %v", err)
	}
	want.Version = base + 1
	want.Peers["p-new"], want.Groups["g-servers"], want.Policies["pol-ssh"] = newPeer, &servers, ssh
	want.Users["u-carol"], want.AccessTokens["pat-carol"] = carol, pat
	delete(want.Routes, "rt-exit")
	want.Settings = settings

	// Setup keys: the indexed columns still drive UseSetupKey.
	acc, k, err := useKey(t, s, UpgradeKeyHash("k-fresh"), now)
	if err != nil || acc != "acme" || k.UsedTimes != 1 || !k.LastUsed.Equal(now) {
		t.Fatalf("use upgraded setup key: account %q, key %+v, %v", acc, k, err)
	}
	want.SetupKeys["k-fresh"] = k
	for id, wantErr := range map[string]error{"k-once": store.ErrKeyExhausted, "k-revoked": store.ErrKeyRevoked,
		"k-expired": store.ErrKeyExpired, "unknown": store.ErrKeyInvalid} {
		if _, _, err := useKey(t, s, UpgradeKeyHash(id), now); !errors.Is(err, wantErr) {
			t.Errorf("use upgraded setup key %s: %v, want %v", id, err, wantErr)
		}
	}
	// Constraints survived: unique values, foreign keys, the version check.
	dupIP := &model.Peer{ID: "p-dup", DNSLabel: "dup", PublicKey: "dup-key", IP: want.Peers["p-gw"].IP}
	dups := map[string]model.Object{"peer ip": dupIP,
		"group name":        &model.Group{ID: "g-dup", Name: "servers"},
		"admin token hash":  &model.AdminToken{ID: "t-dup", TokenHash: UpgradeKeyHash("t-ci")},
		"user identity":     &model.User{ID: "u-dup", Issuer: carol.Issuer, Subject: carol.Subject},
		"access token hash": &model.AccessToken{ID: "pat-dup", TokenHash: pat.TokenHash}}
	if data >= IdentitySchema {
		dups["upgraded user identity"] = &model.User{ID: "u-dup", Issuer: "https://idp.acme.example", Subject: "bob|42"}
		dups["upgraded access token hash"] = &model.AccessToken{ID: "pat-dup", TokenHash: UpgradeKeyHash("pat-ci")}
	}
	for name, obj := range dups {
		if err := put(t, s, "acme", obj); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate %s after upgrade: %v, want store.ErrConflict", name, err)
		}
	}
	if err := put(t, s, "nope", &model.Group{ID: "g", Name: "g"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("put into a missing account after upgrade: %v, want store.ErrNotFound", err)
	}
	err = s.Update(ctxFor(t), func(tx store.Tx) error { return tx.BumpVersion("acme", base) })
	if !errors.Is(err, store.ErrStale) {
		t.Errorf("write from the pre-mutation version: %v, want store.ErrStale", err)
	}
	return ev
}

func checkAccounts(t *testing.T, when string, s store.Store, want map[string]*model.Account) {
	t.Helper()
	got := load(t, s)
	if len(got) != len(want) {
		t.Fatalf("%s: %d accounts, want %d", when, len(got), len(want))
	}
	for id, w := range want {
		if g := got[id]; !reflect.DeepEqual(g, w) {
			gv := int64(-1)
			if g != nil {
				gv = g.Version
			}
			t.Fatalf("%s: account %s (version %d, want %d)\n got  %s\n want %s", when, id, gv, w.Version, dump(g), dump(w))
		}
	}
}
