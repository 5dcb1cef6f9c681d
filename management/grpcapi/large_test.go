package grpcapi

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/management/store"
	"petrel/proto/managementpb"
)

// memStore is a store that holds accounts in memory and writes nothing:
// enough for the service to load a 50,000-peer account in a second instead
// of inserting it row by row.
type memStore struct {
	key   keys.Private
	accts []*model.Account
}

func (m *memStore) LoadAccounts(context.Context) ([]*model.Account, error)  { return m.accts, nil }
func (m *memStore) ServerKey(context.Context) (keys.Private, error)         { return m.key, nil }
func (m *memStore) Update(_ context.Context, fn func(store.Tx) error) error { return fn(nopTx{}) }
func (m *memStore) SchemaVersion(context.Context) (int, error)              { return 1, nil }
func (m *memStore) Close() error                                            { return nil }
func (m *memStore) LoadAccount(_ context.Context, id string) (*model.Account, error) {
	for _, a := range m.accts {
		if a.ID == id {
			return a, nil
		}
	}
	return nil, store.ErrNotFound
}
func (m *memStore) ListEvents(context.Context, string, model.EventFilter) ([]model.Event, error) {
	return nil, nil
}

type nopTx struct{}

func (nopTx) CreateAccount(*model.Account) error        { return nil }
func (nopTx) SaveSettings(string, model.Settings) error { return nil }
func (nopTx) Put(string, model.Object) error            { return nil }
func (nopTx) Delete(string, model.Kind, string) error   { return nil }
func (nopTx) BumpVersion(string, int64) error           { return nil }
func (nopTx) AppendEvent(string, model.Event) error     { return nil }
func (nopTx) UseSetupKey([]byte, time.Time) (string, *model.SetupKey, error) {
	return "", nil, errors.New("memStore: no setup keys")
}

// A 50,000-peer account syncs end to end through real gRPC: the full map
// (about 9.7 MB as older agents would get it, over their 4 MiB receive
// limit) reaches a current agent in about 2 MB with every peer and DNS
// record, a structural change that grows maps is not refused by the map
// size limit and reaches it as a delta, and an older agent is told why it
// gets nothing instead of failing to receive an oversized message.
//
// It takes about 5 s, but 40 s and more under -race on a loaded 2-core
// machine (mostly the server's size check and deltas of the policy
// change), so -short skips it.
func TestFiftyThousandPeersSync(t *testing.T) {
	if testing.Short() {
		t.Skip("50,000 peers: over 30 s under -race; runs without -short")
	}
	const n = 50000
	start := time.Now()
	a := wireAccount(n, 10)
	agent, old := mgmttest.NewKey(t), mgmttest.NewKey(t)
	var agentID string
	ops := &model.Group{ID: "ops", Name: "ops"}
	a.Groups[ops.ID] = ops
	for id, p := range a.Peers {
		switch p.IP {
		case netip.AddrFrom4([4]byte{100, 64, n >> 8, n & 0xff}):
			p.PublicKey, agentID = agent.Public().String(), id
			ops.PeerIDs = append(ops.PeerIDs, id)
		case netip.AddrFrom4([4]byte{100, 64, 0, 1}):
			p.PublicKey = old.Public().String()
		default:
			if len(ops.PeerIDs) < 3 {
				ops.PeerIDs = append(ops.PeerIDs, id)
			}
		}
	}
	var w wireLog
	e := startEnvWith(t, &memStore{key: mgmttest.NewKey(t), accts: []*model.Account{a}}, []grpc.ServerOption{w.option()})
	// Minutes, not seconds: under -race on a shared 2-core machine the
	// 50,000-peer account takes most of a minute to build and sync.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	server := e.svc.ServerKey().Public()
	t.Logf("account of %d peers loaded in %v", n, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	s := e.openSync(t, agent)
	m := s.next(t).GetFull()
	if len(m.GetPeers()) != n-1 || len(m.GetDns().GetZones()[0].GetRecords()) != n-1 {
		t.Fatalf("full map: %d peers, %d peer records; want %d", len(m.GetPeers()), len(m.GetDns().GetZones()[0].GetRecords()), n-1)
	}
	took := time.Since(start)
	want := e.serverMap(t, agentID)
	sameMap(t, "50,000-peer full map", m, noPeerIDs(want))
	env, _ := w.last(t, server, agent)
	t.Logf("full map synced in %v: %d bytes on the wire (%s), %d as older agents would get it",
		took.Round(time.Millisecond), proto.Size(env), env.GetCompression(), proto.Size(want))
	if env.GetCompression() != managementpb.Compression_COMPRESSION_ZSTD || len(env.GetBody()) > MaxBody {
		t.Fatalf("full map sent with %v in %d bytes", env.GetCompression(), len(env.GetBody()))
	}

	// A change that grows the maps of a group (the agent's, "ops"): the
	// size limit (15 MiB of encoded map; it was 3 MiB) lets it through, and
	// the agent gets it as a delta. (A change to a group of thousands of
	// peers costs a Diff of two full maps per member: minutes at this size.)
	if _, err := e.svc.Put(ctx, e.acct, &model.Policy{Name: "ops-ssh", Enabled: true, Rules: []model.PolicyRule{{
		Sources: []string{"ops"}, Destinations: []string{"ops"}, Protocol: model.ProtoTCP,
		Ports: []model.PortRange{{Start: 22, End: 22}}, Action: model.ActionAccept}}}); err != nil {
		t.Fatalf("a policy in a 50,000-peer account is refused: %v", err)
	}
	r := s.next(t)
	if r.GetDelta() == nil || !r.GetDelta().GetFirewallRulesChanged() {
		t.Fatalf("after the policy: %v", r)
	}

	// An older agent (no capabilities, gRPC's default 4 MiB limit) is told
	// to upgrade instead of failing to receive a 9.7 MB message.
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ms, nonce := stamped()
	body, _ := proto.Marshal(&managementpb.SyncRequest{SentUnixMs: ms, Nonce: nonce})
	sealed, err := seal.Seal(body, server, old)
	if err != nil {
		t.Fatal(err)
	}
	pub := old.Public()
	stream, err := managementpb.NewManagementClient(conn).Sync(ctx, &managementpb.EncryptedMessage{WgPublicKey: pub[:], Body: sealed, Version: 1})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "upgrade the agent") {
		t.Fatalf("older agent in a 50,000-peer account: %v", err)
	}
}
