package storetest

import (
	"fmt"
	"testing"

	"petrel/management/model"
	"petrel/management/store"
)

// BenchUpdatePut measures one Update that Puts one peer (a registration's
// write).
func BenchUpdatePut(b *testing.B, s store.Store) {
	save(b, s, model.NewAccount("acc", netip16(10), ts(1700000000, 0)))
	ctx := ctxFor(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		p := peer(i%60000, 10)
		if err := s.Update(ctx, func(tx store.Tx) error { return tx.Put("acc", p) }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchLoadAccounts measures LoadAccounts of one account with peers peers
// (plus one group holding all of them).
func BenchLoadAccounts(b *testing.B, s store.Store, peers int) {
	a := model.NewAccount("acc", netip16(10), ts(1700000000, 0))
	g := &model.Group{ID: "all", Name: model.AllGroupName}
	for i := range peers {
		p := peer(i+1, 10)
		a.Peers[p.ID] = p
		g.PeerIDs = append(g.PeerIDs, p.ID)
	}
	a.Groups[g.ID] = g
	save(b, s, a)
	ctx := ctxFor(b)
	b.ReportAllocs()
	for b.Loop() {
		list, err := s.LoadAccounts(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(list) != 1 || len(list[0].Peers) != peers {
			b.Fatal(fmt.Errorf("loaded %d accounts", len(list)))
		}
	}
}
