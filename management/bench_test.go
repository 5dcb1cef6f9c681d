package management

import (
	"context"
	"fmt"
	"testing"

	"petrel/internal/keys"
	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/proto/managementpb"
)

// benchAccount registers n peers in a mesh and returns their keys and IDs.
func benchAccount(b *testing.B, s *Service, n int) (string, []keys.Private, []string, string) {
	b.Helper()
	ctx := context.Background()
	acct := onlyAccount(b, s)
	_, plain := mustSetupKey(b, s, acct, SetupKeyInput{Reusable: true})
	ks := make([]keys.Private, n)
	ids := make([]string, n)
	for i := range n {
		ks[i] = mgmttest.NewKey(b)
		resp, err := login(s, ctx, ks[i], plain, fmt.Sprintf("peer%d", i))
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = resp.GetPeerConfig().GetPeerId()
	}
	snap, _ := s.Snapshot(acct)
	all := allGroup(snap).ID
	if _, err := s.Put(ctx, acct, &model.Policy{Name: "mesh", Enabled: true, Rules: []model.PolicyRule{{
		Sources: []string{all}, Destinations: []string{all}, Bidirectional: true}}}); err != nil {
		b.Fatal(err)
	}
	return acct, ks, ids, plain
}

// BenchmarkRegister measures one peer registration (store write included)
// into an account that already holds 1000 peers.
func BenchmarkRegister(b *testing.B) {
	s, _ := startService(b, sqliteBackend(b).Open(b))
	_, _, _, plain := benchAccount(b, s, 1000)
	ctx := context.Background()
	ks := make([]keys.Private, b.N)
	for i := range ks {
		ks[i] = mgmttest.NewKey(b)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := login(s, ctx, ks[i], plain, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenameFanout measures a change every peer's map depends on (a
// peer's DNS label) in a 500-peer mesh where every peer has a live Sync
// stream: store write, snapshot, 499 deltas and their hand-off.
func BenchmarkRenameFanout(b *testing.B) {
	s, _ := startService(b, sqliteBackend(b).Open(b))
	acct, ks, ids, _ := benchAccount(b, s, 500)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, len(ks))
	for _, k := range ks {
		go func() {
			_ = s.Sync(ctx, k.Public(), &managementpb.SyncRequest{}, func(*managementpb.SyncResponse) error { return nil })
			done <- struct{}{}
		}()
	}
	waitFor(b, "all streams connected", func() bool {
		for _, id := range ids {
			if c, _ := s.PeerStatus(acct, id); !c {
				return false
			}
		}
		return true
	})
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Put(ctx, acct, &model.Peer{ID: ids[0], DNSLabel: fmt.Sprintf("renamed-%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cancel()
	for range ks {
		<-done
	}
}
