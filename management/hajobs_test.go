package management

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"petrel/management/internal/mgmttest"
	"petrel/management/model"
)

// TestHAEphemeralCleanupOncePerSlot: three instances, an ephemeral peer
// connected to one of them. The others' janitors must not remove it while
// it is connected (they learn it is from the shared last-seen times);
// once it disconnects it is removed exactly once; and the janitor ran at
// most once per time slot across the instances (the job_runs claims), for
// as many slots as ran at all.
func TestHAEphemeralCleanupOncePerSlot(t *testing.T) {
	const ttl, every = 800 * time.Millisecond, 100 * time.Millisecond
	nodes, dsn, acct := startHA(t, 3, noSweep, false, func(c *Config) {
		c.EphemeralTTL, c.JanitorInterval = ttl, every
	})
	ctx := mgmttest.Ctx(t)
	a := nodes[0].s
	_, eph := mustSetupKey(t, a, acct, SetupKeyInput{Ephemeral: true})
	k := mgmttest.NewKey(t)
	resp, err := login(a, ctx, k, eph, "eph")
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetPeerConfig().GetPeerId()
	str := openStream(t, a, k, nil)
	str.next(t)
	exists := func(nd *haNode) bool {
		snap, err := nd.s.Snapshot(acct)
		return err == nil && snap.Peers[id] != nil
	}
	for _, nd := range nodes {
		waitFor(t, nd.name+" knows the peer", func() bool { return exists(nd) })
	}

	// Connected to A for four TTLs: nobody removes it.
	time.Sleep(4 * ttl)
	for _, nd := range nodes {
		if !exists(nd) {
			t.Fatalf("instance %s lost the ephemeral peer while it was connected to A", nd.name)
		}
	}

	str.cancel()
	for _, nd := range nodes {
		waitFor(t, nd.name+" dropped the disconnected ephemeral peer", func() bool { return !exists(nd) })
	}
	evs, err := nodes[1].st.ListEvents(ctx, acct, model.EventFilter{Action: "peer.delete", TargetID: id})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("the ephemeral peer was removed %d times (audit events), want once", len(evs))
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Stop the janitors, then compare their runs with the claimed slots
	// (one row per slot: the table's key).
	for _, nd := range nodes {
		nd.s.Stop()
	}
	var runs uint64
	for _, nd := range nodes {
		runs += nd.s.JanitorRuns()
	}
	var slots int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM job_runs WHERE job = 'janitor'`).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if runs != uint64(slots) || slots == 0 {
		t.Fatalf("janitor ran %d times on the instances for %d claimed slots (want equal and > 0)", runs, slots)
	}
	t.Logf("janitor ran %d times in %d slots across 3 instances", runs, slots)
}

// TestHAStreamOpeningsWrittenTogether: streams opening at once are
// recorded as connected right away (no janitor tick needed), in one
// statement: PostgreSQL's now() is the statement's transaction time, so
// one write gives every row the same time and one write per opening
// would not.
func TestHAStreamOpeningsWrittenTogether(t *testing.T) {
	nodes, dsn, _ := startHA(t, 1, noSweep, false, func(c *Config) { c.JanitorInterval = time.Hour })
	a := nodes[0].s
	_, ks, ids := meshAccount(t, a, 6)
	var strs []*stream
	for _, k := range ks { // opened together
		strs = append(strs, openStream(t, a, k, nil))
	}
	for _, str := range strs {
		str.next(t)
	}
	conn, err := pgx.Connect(mgmttest.Ctx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, times int
	waitFor(t, "every opening recorded", func() bool {
		err := conn.QueryRow(mgmttest.Ctx(t), `SELECT count(*), count(DISTINCT seen_at) FROM peer_seen
			WHERE peer_id = ANY($1)`, ids).Scan(&rows, &times)
		return err == nil && rows == len(ids)
	})
	if times > len(ids)/2 { // a slow machine may spread them over a few batches
		t.Fatalf("%d openings written at %d different times; want them gathered", rows, times)
	}
}
