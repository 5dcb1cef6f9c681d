package management

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"petrel/internal/keys"
	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/management/store"
)

// largeMesh returns a started service whose only account holds n peers
// meshed by an All → All policy, and the account's and peers' IDs. The
// peers are written to the store before the service starts (registering
// thousands through Login would take minutes).
func largeMesh(b testing.TB, n int) (*Service, string, []string) {
	b.Helper()
	ctx := context.Background()
	quiet := func(testing.TB) *slog.Logger { return slog.New(slog.DiscardHandler) }
	st := mgmttest.SQLite(b, quiet).Open(b)
	now := time.Now().UTC()
	a := model.NewAccount("acct-bench", netip.MustParsePrefix("100.64.0.0/16"), now)
	all := &model.Group{ID: "grp-all", Name: model.AllGroupName}
	ids := make([]string, n)
	ip := a.Network.Addr().Next()
	err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateAccount(a); err != nil {
			return err
		}
		if err := tx.Put(a.ID, all); err != nil {
			return err
		}
		for i := range n {
			k, err := keys.NewPrivate()
			if err != nil {
				return err
			}
			ids[i] = fmt.Sprintf("peer-%05d", i)
			p := &model.Peer{ID: ids[i], Name: ids[i], DNSLabel: ids[i], PublicKey: k.Public().String(), IP: ip,
				Meta: model.PeerMeta{Hostname: ids[i]}, CreatedAt: now}
			if err := tx.Put(a.ID, p); err != nil {
				return err
			}
			ip = ip.Next()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	s, _ := startService(b, st, func(c *Config) { c.Logger = quiet(b) })
	if _, err := s.Put(ctx, a.ID, &model.Policy{Name: "mesh", Enabled: true, Rules: []model.PolicyRule{{
		Sources: []string{all.ID}, Destinations: []string{all.ID}, Bidirectional: true}}}); err != nil {
		b.Fatal(err)
	}
	return s, a.ID, ids
}

// BenchmarkConnectivity measures one dashboard matrix page (50 × 50 pairs,
// what /ui/matrix/cells asks for on every live event) in a 5,000-peer
// mesh.
func BenchmarkConnectivity(b *testing.B) {
	s, acct, ids := largeMesh(b, 5000)
	page := ids[100:150]
	m, err := s.Connectivity(acct, page, page)
	if err != nil {
		b.Fatal(err)
	}
	if p := m.Pair(page[0], page[1]); p.State != PairDown || !p.Expected {
		b.Fatalf("pair = %+v, want expected and down (no sync stream)", p)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Connectivity(acct, page, page); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConnectivityNeedsNoKeyIndex: the matrix answers "no policy" from the
// account's snapshot alone (netmap.Snapshot.Sees, page pairs only). It must
// not build the page peers' network maps and resolve every remote peer's
// key in the service-wide index under s.mu — a page of a 10,000-peer
// account did that half a million times per refresh. With the account's
// keys gone from the index, the pairs keep their policy.
func TestConnectivityNeedsNoKeyIndex(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct, ks, ids, _ := matrixAccount(t, s)
	report(t, s, ks[0], true, pathEntry(ks[1], stP2P, ""))
	s.mu.Lock()
	saved := map[keys.Public]peerRef{}
	for k, r := range s.byKey {
		if r.accountID == acct {
			saved[k] = r
			delete(s.byKey, k)
		}
	}
	s.mu.Unlock()
	m, err := s.Connectivity(acct, ids, ids)
	s.mu.Lock()
	for k, r := range saved {
		s.byKey[k] = r
	}
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if len(saved) != len(ids) {
		t.Fatalf("%d keys in the index, want %d", len(saved), len(ids))
	}
	for _, c := range []struct {
		a, b  int
		state PairState
	}{{0, 1, PairP2P}, {1, 0, PairP2P}, {1, 2, PairUnknown}, {0, 3, PairNoPolicy}, {3, 0, PairNoPolicy}} {
		if p := m.Pair(ids[c.a], ids[c.b]); p.State != c.state || p.Expected != (c.state != PairNoPolicy) {
			t.Errorf("pair %d→%d = %+v, want %s", c.a, c.b, p, c.state)
		}
	}
}
