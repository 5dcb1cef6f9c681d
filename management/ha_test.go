package management

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/management/store"
	"petrel/management/store/postgres"
	"petrel/management/store/storetest"
	"petrel/proto/managementpb"
)

// These tests run several Services on one PostgreSQL database, each with
// its own shared store (postgres.OpenShared) and follower, as petrel-server
// --ha instances would. They need PETREL_TEST_POSTGRES_DSN (skipped
// without it, like every PostgreSQL test; required in CI).

// haNode is one instance.
type haNode struct {
	name string
	s    *Service
	st   *postgres.Store
	feed *testFeed
}

// testFeed passes the store's feed through, optionally dropping every
// notification (so only the version sweep can catch up).
type testFeed struct {
	store.Feed
	drop    atomic.Bool
	dropped atomic.Int64 // notifications dropped so far
}

func (f *testFeed) Follow(ctx context.Context, changed func(store.Change), resync func()) error {
	return f.Feed.Follow(ctx, func(c store.Change) {
		if f.drop.Load() {
			f.dropped.Add(1)
			return
		}
		changed(c)
	}, resync)
}

// noSweep leaves notifications (and the resync after each LISTEN) as the
// only way to catch up.
const noSweep = time.Hour

// startHA starts n instances on a fresh database; the first bootstraps
// the account and the others pick it up (from its creation's notification
// or, with drop, from a sweep). It returns the DSN too.
func startHA(t *testing.T, n int, sweep time.Duration, drop bool, opts ...func(*Config)) ([]*haNode, string, string) {
	t.Helper()
	dsn := storetest.PostgresDSN(t)
	ctx := mgmttest.Ctx(t)
	var nodes []*haNode
	for i := range n {
		name := string(rune('A' + i))
		st, err := postgres.OpenShared(ctx, dsn, testLog(t).With("instance", name))
		if err != nil {
			t.Fatalf("open shared store %s: %v", name, err)
		}
		feed := &testFeed{Feed: st}
		feed.drop.Store(drop)
		cfg := Config{
			Store:  st,
			Logger: testLog(t).With("instance", name),
			Server: ServerInfo{PublicURL: "http://mgmt.lab.test:8080"},
			HA:     &HAConfig{Feed: feed, SweepInterval: sweep},
		}
		for _, o := range opts {
			o(&cfg)
		}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Stop(); st.Close() })
		nodes = append(nodes, &haNode{name: name, s: s, st: st, feed: feed})
	}
	if _, _, err := nodes[0].s.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	acct := onlyAccount(t, nodes[0].s)
	for _, nd := range nodes[1:] {
		waitFor(t, nd.name+" has the account", func() bool { return len(nd.s.Accounts()) == 1 })
	}
	return nodes, dsn, acct
}

// delay polls cond every millisecond until it holds (failing the test
// after a generous deadline) and returns how long that took.
func delay(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func memVersion(nd *haNode, acct string) int64 {
	st, err := nd.s.account(acct)
	if err != nil {
		return -1
	}
	return st.view().acct.Version
}

// fingerprint is what the instances and the database must agree on.
func fingerprint(a *model.Account) string {
	out := fmt.Sprintf("v%d", a.Version)
	for _, id := range slices.Sorted(maps.Keys(a.Groups)) {
		g := a.Groups[id]
		members := slices.Sorted(slices.Values(g.PeerIDs))
		if g.Name == model.AllGroupName {
			members = nil // implicit: stored empty, filled in by Snapshot
		}
		out += fmt.Sprintf(" g[%s %s %v]", id, g.Name, members)
	}
	for _, id := range slices.Sorted(maps.Keys(a.Policies)) {
		out += fmt.Sprintf(" p[%s %s]", id, a.Policies[id].Name)
	}
	for _, id := range slices.Sorted(maps.Keys(a.Peers)) {
		p := a.Peers[id]
		out += fmt.Sprintf(" n[%s %s %s]", id, p.IP, p.DNSLabel)
	}
	return out
}

// matchesStore reports whether nd's memory equals the stored account.
func matchesStore(t *testing.T, nd *haNode, acct string) (bool, string) {
	t.Helper()
	stored, err := nd.st.LoadAccount(mgmttest.Ctx(t), acct)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := nd.s.Snapshot(acct)
	if err != nil {
		return false, err.Error()
	}
	want, got := fingerprint(stored), fingerprint(mem)
	return want == got, fmt.Sprintf("%s memory %s\nstore %s", nd.name, got, want)
}

func allMatchStore(t *testing.T, nodes []*haNode, acct string) {
	t.Helper()
	for _, nd := range nodes {
		start := time.Now()
		for {
			ok, diff := matchesStore(t, nd, acct)
			if ok {
				break
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("instance differs from the database after 30 s:\n%s", diff)
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("%s equal to the database after %v", nd.name, time.Since(start))
	}
}

// follow reads a stream, checking serial continuity and applying deltas,
// until its map equals want() or the deadline passes; it returns the last
// serial.
func (st *stream) follow(t *testing.T, m *managementpb.NetworkMap, serial uint64, want func() *managementpb.NetworkMap) (*managementpb.NetworkMap, uint64) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !proto.Equal(m, want()) {
		var r *managementpb.SyncResponse
		select {
		case r = <-st.msgs:
		case <-time.After(50 * time.Millisecond):
			continue // want() may move on too
		case <-deadline:
			t.Fatal("stream did not converge to the instance's map within 30 s")
		}
		if r.GetSerial() != serial+1 || r.GetFull() != nil {
			t.Fatalf("stream serial %d after %d (full %v): want consecutive deltas", r.GetSerial(), serial, r.GetFull() != nil)
		}
		serial = r.GetSerial()
		if r.GetDelta() != nil {
			m = netmap.Apply(m, r.GetDelta())
		}
	}
	return m, serial
}

// TestHAChangeReachesOtherInstance: with notifications only (no sweep), a
// change committed on A shows in B's snapshot and, as deltas with
// consecutive serials, on a Sync stream connected to B; an agent moving
// from B to A gets a full map whose serial (the account version) is not
// below the last one B sent.
func TestHAChangeReachesOtherInstance(t *testing.T) {
	nodes, _, acct := startHA(t, 2, noSweep, false)
	a, b := nodes[0], nodes[1]
	ctx := mgmttest.Ctx(t)
	_, ks, ids := meshAccount(t, a.s, 2)
	delay(t, "B at A's version", func() bool { return memVersion(b, acct) == memVersion(a, acct) })

	str := openStream(t, b.s, ks[0], nil)
	first := str.next(t)
	if first.GetFull() == nil || first.GetSerial() != uint64(memVersion(a, acct)) {
		t.Fatalf("first message: full %v serial %d, want the full map at the account version %d",
			first.GetFull() != nil, first.GetSerial(), memVersion(a, acct))
	}
	m, serial := first.GetFull(), first.GetSerial()

	// A group created on A appears in B's snapshot.
	g := mustGroup(t, a.s, acct, "made-on-a", ids[0])
	d := delay(t, "group in B's snapshot", func() bool {
		snap, _ := b.s.Snapshot(acct)
		return snap.Groups[g.ID] != nil
	})
	t.Logf("catch-up delay (notify), group in B's snapshot: %v", d)

	// A peer registered on A reaches B's stream as a delta.
	_, plain := mustSetupKey(t, a.s, acct, SetupKeyInput{Reusable: true})
	start := time.Now()
	if _, err := login(a.s, ctx, mgmttest.NewKey(t), plain, "late"); err != nil {
		t.Fatal(err)
	}
	m, serial = str.follow(t, m, serial, func() *managementpb.NetworkMap { return a.s.freshMap(t, acct, ids[0]) })
	t.Logf("catch-up delay (notify), new peer on B's stream: %v", time.Since(start))
	if len(m.GetPeers()) != 2 {
		t.Fatalf("peer 0 sees %d peers after the registration on A, want 2", len(m.GetPeers()))
	}

	// A run of changes on A: B's stream follows with consecutive serials.
	for i := range 20 {
		if _, err := a.s.Put(ctx, acct, &model.Peer{ID: ids[1], DNSLabel: fmt.Sprintf("renamed-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	_, serial = str.follow(t, m, serial, func() *managementpb.NetworkMap { return a.s.freshMap(t, acct, ids[0]) })
	allMatchStore(t, nodes, acct)

	// The agent moves to A: a full map again, with a serial not below the
	// last one B sent (each delta reflects at least one committed version).
	str.cancel()
	<-str.done
	str.done <- nil
	moved := openStream(t, a.s, ks[0], nil).next(t)
	if moved.GetFull() == nil || moved.GetSerial() < serial {
		t.Fatalf("after moving to A: full %v serial %d, last serial from B %d", moved.GetFull() != nil, moved.GetSerial(), serial)
	}
	if !proto.Equal(moved.GetFull(), b.s.freshMap(t, acct, ids[0])) {
		t.Fatal("A's full map differs from B's")
	}
}

// TestHASweepCatchesLostNotifications: every notification is lost; the
// periodic version sweep alone brings B up to date.
func TestHASweepCatchesLostNotifications(t *testing.T) {
	nodes, _, acct := startHA(t, 2, 100*time.Millisecond, true)
	a, b := nodes[0], nodes[1]
	g := mustGroup(t, a.s, acct, "unheard")
	d := delay(t, "group in B's snapshot", func() bool {
		snap, _ := b.s.Snapshot(acct)
		return snap.Groups[g.ID] != nil
	})
	t.Logf("catch-up delay (sweep every 100ms, notifications dropped): %v", d)
	allMatchStore(t, nodes, acct)
}

// TestHAConcurrentEditsNoLostUpdate: A and B edit the same policy (and add
// groups) at the same time. Every call succeeds (a stale commit is retried
// on the reloaded account), the groups of both are all there, the policy
// holds the last committed edit, and both instances equal the database.
func TestHAConcurrentEditsNoLostUpdate(t *testing.T) {
	nodes, _, acct := startHA(t, 2, noSweep, false)
	ctx := mgmttest.Ctx(t)
	snap, _ := nodes[0].s.Snapshot(acct)
	all := allGroup(snap).ID
	pol, err := nodes[0].s.Put(ctx, acct, &model.Policy{Name: "shared", Enabled: true, Rules: []model.PolicyRule{{
		Sources: []string{all}, Destinations: []string{all}, Bidirectional: true}}})
	if err != nil {
		t.Fatal(err)
	}
	polID := pol.(*model.Policy).ID
	delay(t, "B has the policy", func() bool { return memVersion(nodes[1], acct) == memVersion(nodes[0], acct) })

	const rounds = 15
	var wg sync.WaitGroup
	errs := make(chan error, 2*2*rounds)
	for _, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				p := &model.Policy{ID: polID, Name: fmt.Sprintf("%s-%d", nd.name, i), Enabled: true, Rules: []model.PolicyRule{{
					Sources: []string{all}, Destinations: []string{all}, Bidirectional: true}}}
				if _, err := nd.s.Put(ctx, acct, p); err != nil {
					errs <- fmt.Errorf("%s: put policy: %w", nd.name, err)
				}
				if _, err := nd.s.Put(ctx, acct, &model.Group{Name: fmt.Sprintf("g-%s-%d", nd.name, i)}); err != nil {
					errs <- fmt.Errorf("%s: put group: %w", nd.name, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	allMatchStore(t, nodes, acct)
	final, _ := nodes[1].s.Snapshot(acct)
	for _, nd := range nodes {
		for i := range rounds {
			found := false
			for _, g := range final.Groups {
				found = found || g.Name == fmt.Sprintf("g-%s-%d", nd.name, i)
			}
			if !found {
				t.Errorf("group g-%s-%d lost", nd.name, i)
			}
		}
	}
	if name := final.Policies[polID].Name; name != fmt.Sprintf("A-%d", rounds-1) && name != fmt.Sprintf("B-%d", rounds-1) {
		t.Errorf("policy name %q: want the last edit of A or of B", name)
	}
	t.Logf("reloads: A %d, B %d", nodes[0].s.FollowReloads(), nodes[1].s.FollowReloads())
}

// TestHARegistrationsRaceForLastAddress: an account with a /29 (six
// addresses) is full but for one; two agents register at once, one on A
// and one on B. One gets the address, the other a clear error, and the
// database holds no address twice. Repeated, freeing one address a round.
func TestHARegistrationsRaceForLastAddress(t *testing.T) {
	nodes, _, _ := startHA(t, 2, noSweep, false)
	a, b := nodes[0], nodes[1]
	ctx := mgmttest.Ctx(t)
	// A small account, created in the store as another instance would.
	small := model.NewAccount("small-account", netip.MustParsePrefix("100.127.0.0/29"), time.Now().UTC())
	if err := a.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateAccount(small); err != nil {
			return err
		}
		return tx.Put(small.ID, &model.Group{ID: "small-all", Name: model.AllGroupName})
	}); err != nil {
		t.Fatal(err)
	}
	for _, nd := range nodes {
		delay(t, nd.name+" has the small account", func() bool { return memVersion(nd, small.ID) >= 0 })
	}
	_, plain := mustSetupKey(t, a.s, small.ID, SetupKeyInput{Reusable: true})
	var peers []string
	for i := range 5 {
		resp, err := login(a.s, ctx, mgmttest.NewKey(t), plain, fmt.Sprintf("fill-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, resp.GetPeerConfig().GetPeerId())
	}
	for round := range 4 {
		delay(t, "B caught up", func() bool { return memVersion(b, small.ID) == memVersion(a, small.ID) })
		var wg sync.WaitGroup
		res := make([]error, 2)
		ids := make([]string, 2)
		for i, nd := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := login(nd.s, ctx, mgmttest.NewKey(t), plain, fmt.Sprintf("race-%d-%s", round, nd.name))
				res[i] = err
				ids[i] = resp.GetPeerConfig().GetPeerId()
			}()
		}
		wg.Wait()
		ok := 0
		for i, err := range res {
			switch {
			case err == nil:
				ok++
				peers = append(peers, ids[i])
			case KindOf(err) != KindPrecondition:
				t.Errorf("round %d, %s: %v (kind %v), want success or KindPrecondition (no free address)", round, nodes[i].name, err, KindOf(err))
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d registrations succeeded for one free address (errors %v)", round, ok, res)
		}
		stored, err := a.st.LoadAccount(ctx, small.ID)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[netip.Addr]string{}
		for _, p := range stored.Peers {
			if other, dup := seen[p.IP]; dup {
				t.Fatalf("round %d: %s and %s both hold %s", round, other, p.ID, p.IP)
			}
			seen[p.IP] = p.ID
		}
		if len(stored.Peers) != 6 {
			t.Fatalf("round %d: %d peers stored, want 6", round, len(stored.Peers))
		}
		// Free one address (on B this time) for the next round.
		if err := b.s.Delete(ctx, small.ID, model.KindPeer, peers[0]); err != nil {
			t.Fatal(err)
		}
		peers = peers[1:]
	}
	allMatchStore(t, nodes, small.ID)
}

// TestHAListenerKilledMidBurst: A commits a burst of changes; in its
// middle every listener connection of the database is terminated
// (pg_terminate_backend), so the notifications of the rest of the burst
// reach nobody. There is no sweep: B catches up from the version
// comparison it makes after re-LISTENing, applying the change log (no
// reload). A Sync stream on B follows with
// consecutive serials throughout.
func TestHAListenerKilledMidBurst(t *testing.T) {
	nodes, dsn, acct := startHA(t, 2, noSweep, false)
	a, b := nodes[0], nodes[1]
	ctx := mgmttest.Ctx(t)
	_, ks, ids := meshAccount(t, a.s, 2)
	delay(t, "B at A's version", func() bool { return memVersion(b, acct) == memVersion(a, acct) })
	str := openStream(t, b.s, ks[0], nil)
	first := str.next(t)
	m, serial := first.GetFull(), first.GetSerial()

	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	listeners := func() []int32 {
		rs, err := admin.Query(ctx, `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND application_name LIKE $1`, postgres.ListenerAppName+"%")
		if err != nil {
			t.Fatal(err)
		}
		pids, err := pgx.CollectRows(rs, pgx.RowTo[int32])
		if err != nil {
			t.Fatal(err)
		}
		return pids
	}
	before := listeners()
	if len(before) != 2 {
		t.Fatalf("%d listener connections, want 2", len(before))
	}
	label := func(i int) {
		if _, err := a.s.Put(ctx, acct, &model.Peer{ID: ids[1], DNSLabel: fmt.Sprintf("burst-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		label(i)
	}
	for _, pid := range before {
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
			t.Fatal(err)
		}
	}
	delay(t, "killed listeners gone", func() bool {
		for _, pid := range listeners() {
			if slices.Contains(before, pid) {
				return false
			}
		}
		return true
	})
	killed := time.Now()
	reloads, applied := b.s.FollowReloads(), b.s.FollowApplied()
	// Short enough to end before the listeners are back (their first
	// reconnect waits at least 50 ms), so only the version comparison
	// after re-LISTEN can bring B up to date.
	for i := 10; i < 15; i++ {
		label(i)
		mustGroup(t, a.s, acct, fmt.Sprintf("burst-g-%d", i))
	}
	burstEnd := time.Now()
	d := delay(t, "B at A's version after the kill", func() bool { return memVersion(b, acct) == memVersion(a, acct) })
	t.Logf("catch-up after the listener kill: %v after the burst ended (%v after the kill; burst took %v)",
		d, time.Since(killed), burstEnd.Sub(killed))
	// From the change log: B applied the burst's rows, never reloaded.
	if b.s.FollowReloads() != reloads || b.s.FollowApplied() == applied {
		t.Fatalf("B caught up by reloading (reloads %d → %d, log rows applied %d → %d); want the change log",
			reloads, b.s.FollowReloads(), applied, b.s.FollowApplied())
	}
	delay(t, "both listeners back", func() bool { return len(listeners()) == 2 })
	str.follow(t, m, serial, func() *managementpb.NetworkMap { return a.s.freshMap(t, acct, ids[0]) })
	allMatchStore(t, nodes, acct)
	equalStore(t, b, acct)
}

// TestHARequiresFeed: HA without a feed is refused.
func TestHARequiresFeed(t *testing.T) {
	st := sqliteBackend(t).Open(t)
	defer st.Close()
	_, err := New(Config{Store: st, HA: &HAConfig{}})
	if err == nil {
		t.Fatal("HA without a feed accepted")
	}
}
