package grpcapi

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"petrel/client/mgmt"
	"petrel/internal/keys"
	"petrel/management"
	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/proto/managementpb"
)

// syncer is one agent's Sync stream over the real client.
type syncer struct {
	cancel context.CancelFunc
	msgs   chan *managementpb.SyncResponse
	done   chan error
}

func (e *env) openSync(t *testing.T, priv keys.Private) *syncer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &syncer{cancel: cancel, msgs: make(chan *managementpb.SyncResponse, 64), done: make(chan error, 1)}
	go func() {
		s.done <- e.client.Sync(ctx, priv, nil, func(r *managementpb.SyncResponse) error {
			select {
			case s.msgs <- r:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(s.close)
	return s
}

func (s *syncer) close() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
		s.cancel = nil
	}
}

// ended waits for the stream to end and returns its error.
func (s *syncer) ended(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for close
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("sync did not end within 30 s")
	}
	return nil
}

func (s *syncer) next(t *testing.T) *managementpb.SyncResponse {
	t.Helper()
	select {
	case r := <-s.msgs:
		return r
	case err := <-s.done:
		t.Fatalf("sync ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no sync message within 30 s")
	}
	return nil
}

// Every kind of change reaches a syncing agent as one delta with the next
// serial, and applying it gives exactly the map a fresh Sync returns.
func TestSyncDeltasMatchFreshMap(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := startEnv(t, b.Open(t))
		ctx := mgmttest.Ctx(t)
		plain := e.setupKey(t, management.SetupKeyInput{Reusable: true})
		reg := func(name string) (keys.Private, string) {
			k := mgmttest.NewKey(t)
			resp, err := e.client.Login(ctx, k, &managementpb.LoginRequest{SetupKey: plain, Hostname: name})
			if err != nil {
				t.Fatal(err)
			}
			return k, resp.GetPeerConfig().GetPeerId()
		}
		alpha, alphaID := reg("alpha")
		_, betaID := reg("beta")
		snap, _ := e.svc.Snapshot(e.acct)
		var allID string
		for id, g := range snap.Groups {
			if g.Name == model.AllGroupName {
				allID = id
			}
		}
		put := func(o model.Object) model.Object {
			t.Helper()
			out, err := e.svc.Put(ctx, e.acct, o)
			if err != nil {
				t.Fatalf("put %T: %v", o, err)
			}
			return out
		}
		ops := put(&model.Group{Name: "ops", PeerIDs: []string{alphaID}}).(*model.Group)
		mesh := put(&model.Policy{Name: "mesh", Enabled: true, Rules: []model.PolicyRule{{
			Sources: []string{allID}, Destinations: []string{allID}, Bidirectional: true, Action: model.ActionAccept}}}).(*model.Policy)

		s := e.openSync(t, alpha)
		first := s.next(t)
		if first.GetFull() == nil || first.GetServerConfig().GetRelay().GetToken() == "" ||
			len(first.GetServerConfig().GetDomains().GetManagement()) != 1 {
			t.Fatalf("first message: %v", first)
		}
		if n := len(first.GetFull().GetPeers()); n != 1 {
			t.Fatalf("alpha sees %d peers, want beta", n)
		}
		m, serial := first.GetFull(), first.GetSerial()
		var gammaID string

		steps := []struct {
			name   string
			change func()
		}{
			{"peer join", func() { _, gammaID = reg("gamma") }},
			{"policy update", func() {
				p := *mesh
				p.Rules = []model.PolicyRule{{Sources: []string{ops.ID}, Destinations: []string{allID}, Bidirectional: true, Protocol: model.ProtoTCP,
					Ports: []model.PortRange{{Start: 22, End: 22}, {Start: 8000, End: 8080}}}}
				put(&p)
			}},
			{"group change", func() { put(&model.Group{ID: ops.ID, Name: "ops", PeerIDs: []string{alphaID, betaID}}) }},
			{"policy create", func() {
				put(&model.Policy{Name: "dns", Enabled: true, Rules: []model.PolicyRule{{
					Sources: []string{allID}, Destinations: []string{ops.ID}, Protocol: model.ProtoUDP, Ports: []model.PortRange{{Start: 53, End: 53}}}}})
			}},
			{"route create", func() {
				put(&model.Route{Network: netip.MustParsePrefix("10.20.0.0/24"), Peer: betaID, Groups: []string{allID}, Enabled: true, Masquerade: true})
			}},
			{"nameserver group", func() {
				put(&model.NameserverGroup{Name: "corp", Nameservers: []netip.AddrPort{netip.MustParseAddrPort("10.20.0.53:53")},
					Domains: []string{"corp.example"}, Groups: []string{allID}, Enabled: true})
			}},
			{"zone", func() {
				put(&model.DNSZone{Domain: "lab.example", Records: []model.DNSRecord{{Name: "www", Type: "A", Value: "10.20.0.80"}}})
			}},
			{"settings", func() {
				if err := e.svc.UpdateSettings(ctx, e.acct, model.Settings{DNSDomain: "mesh.example"}); err != nil {
					t.Fatal(err)
				}
			}},
			{"peer rename", func() { put(&model.Peer{ID: betaID, DNSLabel: "beta-two"}) }},
			{"peer delete", func() {
				if err := e.svc.Delete(ctx, e.acct, model.KindPeer, gammaID); err != nil {
					t.Fatal(err)
				}
			}},
		}
		for _, st := range steps {
			st.change()
			r := s.next(t)
			if r.GetDelta() == nil || r.GetFull() != nil {
				t.Fatalf("%s: got %v, want a delta", st.name, r)
			}
			if r.GetSerial() != serial+1 {
				t.Fatalf("%s: serial %d after %d", st.name, r.GetSerial(), serial)
			}
			applied := netmap.Apply(m, r.GetDelta())
			s.close()
			s = e.openSync(t, alpha)
			fresh := s.next(t)
			if !proto.Equal(applied, fresh.GetFull()) {
				t.Fatalf("%s: applied delta differs from a fresh map\napplied:\n%s\nfresh:\n%s", st.name,
					prototext.Format(applied), prototext.Format(fresh.GetFull()))
			}
			m, serial = fresh.GetFull(), fresh.GetSerial()
		}
		if d := m.GetDns().GetDomain(); d != "mesh.example" || len(m.GetRoutes()) != 1 || len(m.GetPeers()) != 1 {
			t.Fatalf("final map: domain %q, %d routes, %d peers", d, len(m.GetRoutes()), len(m.GetPeers()))
		}
	})
}

// Relay tokens are re-issued through config updates before they expire.
func TestSyncRefreshesRelayToken(t *testing.T) {
	var minted atomic.Int64
	e := startEnv(t, sqliteBackend(t).Open(t), func(c *management.Config) {
		c.Server.RelayTokenTTL = 300 * time.Millisecond
		c.MintRelayToken = func(peer keys.Public, exp time.Time) string {
			return fmt.Sprintf("tok-%s-%d", peer.Short(), minted.Add(1))
		}
	})
	ctx := mgmttest.Ctx(t)
	k := mgmttest.NewKey(t)
	if _, err := e.client.Login(ctx, k, &managementpb.LoginRequest{SetupKey: e.setupKey(t, management.SetupKeyInput{}), Hostname: "a"}); err != nil {
		t.Fatal(err)
	}
	s := e.openSync(t, k)
	first := s.next(t)
	tok := first.GetServerConfig().GetRelay().GetToken()
	upd := s.next(t)
	if upd.GetSerial() != first.GetSerial()+1 || upd.GetDelta() != nil || upd.GetFull() != nil {
		t.Fatalf("config update: %v", upd)
	}
	if nt := upd.GetServerConfig().GetRelay().GetToken(); nt == "" || nt == tok {
		t.Fatalf("token not re-issued: %q after %q", nt, tok)
	}
}

// Agents learn why a stream ended: replaced → Unavailable (retry), deleted
// → PermissionDenied (log in again).
func TestSyncEndCodes(t *testing.T) {
	e := startEnv(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	k := mgmttest.NewKey(t)
	resp, err := e.client.Login(ctx, k, &managementpb.LoginRequest{SetupKey: e.setupKey(t, management.SetupKeyInput{}), Hostname: "a"})
	if err != nil {
		t.Fatal(err)
	}
	first := e.openSync(t, k)
	first.next(t)
	waitFor := func(what string, cond func() bool) {
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("connected", func() bool { c, _ := e.svc.PeerStatus(e.acct, resp.GetPeerConfig().GetPeerId()); return c })
	second := e.openSync(t, k)
	second.next(t)
	if err := first.ended(t); status.Code(err) != codes.Unavailable || mgmt.NeedsLogin(err) {
		t.Fatalf("replaced stream: %v", err)
	}
	if err := e.svc.Delete(ctx, e.acct, model.KindPeer, resp.GetPeerConfig().GetPeerId()); err != nil {
		t.Fatal(err)
	}
	if err := second.ended(t); status.Code(err) != codes.PermissionDenied || !mgmt.NeedsLogin(err) {
		t.Fatalf("deleted peer's stream: %v", err)
	}
}
