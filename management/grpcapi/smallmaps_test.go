package grpcapi

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	mdns "github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"petrel/client/dns"
	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/internal/zstdbody"
	"petrel/management"
	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/proto/managementpb"
)

// wireLog records every message the server sends on Sync streams.
type wireLog struct {
	mu   sync.Mutex
	msgs []*managementpb.EncryptedMessage
}

func (w *wireLog) option() grpc.ServerOption {
	return grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		return h(srv, &loggedStream{ServerStream: ss, w: w})
	})
}

type loggedStream struct {
	grpc.ServerStream
	w *wireLog
}

func (s *loggedStream) SendMsg(m any) error {
	if em, ok := m.(*managementpb.EncryptedMessage); ok {
		s.w.mu.Lock()
		s.w.msgs = append(s.w.msgs, proto.CloneOf(em))
		s.w.mu.Unlock()
	}
	return s.ServerStream.SendMsg(m)
}

// last returns the last message sent, opened for agent: what was on the
// wire, decompressed.
func (w *wireLog) last(t *testing.T, server keys.Public, agent keys.Private) (*managementpb.EncryptedMessage, *managementpb.SyncResponse) {
	t.Helper()
	w.mu.Lock()
	m := w.msgs[len(w.msgs)-1]
	w.mu.Unlock()
	plain, err := seal.Open(m.GetBody(), server, agent)
	if err != nil {
		t.Fatal(err)
	}
	if m.GetCompression() == managementpb.Compression_COMPRESSION_ZSTD {
		dec, err := zstdbody.NewDecoder(0)
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		if plain, err = dec.Decode(plain); err != nil {
			t.Fatal(err)
		}
	}
	r := &managementpb.SyncResponse{}
	if err := proto.Unmarshal(plain, r); err != nil {
		t.Fatal(err)
	}
	return m, r
}

// serverMap is the map the server builds for peerID now: what older agents
// receive.
func (e *env) serverMap(t *testing.T, peerID string) *managementpb.NetworkMap {
	t.Helper()
	a, err := e.svc.Snapshot(e.acct)
	if err != nil {
		t.Fatal(err)
	}
	m, err := netmap.Build(a).Map(peerID)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// noPeerIDs is m without RemotePeer.peer_id, which agents that take
// compact peers do not get.
func noPeerIDs(m *managementpb.NetworkMap) *managementpb.NetworkMap {
	m = proto.CloneOf(m)
	for _, p := range m.Peers {
		p.PeerId = ""
	}
	return m
}

func sameMap(t *testing.T, what string, got, want *managementpb.NetworkMap) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Fatalf("%s: the agent's map differs from the server's\nagent:\n%s\nserver:\n%s", what,
			prototext.Format(got), prototext.Format(want))
	}
}

// The agent's maps (full, then each delta applied) equal the server's maps
// in every DNS-relevant change, although the wire carries no peer records,
// no peer IDs and no names equal to labels, compressed; and the resolver
// answers identically from both (A, short names, PTR).
func TestSmallMapsEqualServerMaps(t *testing.T) {
	var w wireLog
	e := startEnvWith(t, sqliteBackend(t).Open(t), []grpc.ServerOption{w.option()})
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
	ids := map[string]string{}
	for _, h := range []string{"beta", "Gamma.Corp.Example", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa"} {
		_, ids[h] = reg(h) // Gamma's name is not its label: sent in full
	}
	snap, _ := e.svc.Snapshot(e.acct)
	allID := allGroup(t, snap)
	put := func(o model.Object) {
		t.Helper()
		if _, err := e.svc.Put(ctx, e.acct, o); err != nil {
			t.Fatalf("put %T: %v", o, err)
		}
	}
	put(&model.Policy{Name: "mesh", Enabled: true, Rules: []model.PolicyRule{{
		Sources: []string{allID}, Destinations: []string{allID}, Bidirectional: true, Action: model.ActionAccept}}})

	server := e.svc.ServerKey().Public()
	s := e.openSync(t, alpha)
	first := s.next(t)
	m := first.GetFull()
	sameMap(t, "full map", m, noPeerIDs(e.serverMap(t, alphaID)))
	if n := len(m.GetDns().GetZones()[0].GetRecords()); n != 9 {
		t.Fatalf("the agent's peer zone holds %d records, want 9", n)
	}
	env, wire := w.last(t, server, alpha)
	if env.GetCompression() != managementpb.Compression_COMPRESSION_ZSTD {
		t.Fatalf("full map sent with compression %v", env.GetCompression())
	}
	checkCompactWire(t, "full map", wire.GetFull().GetDns(), wire.GetFull().GetPeers())
	checkSameAnswers(t, "full map", m, e.serverMap(t, alphaID))

	steps := []struct {
		name   string
		change func()
	}{
		{"peer join", func() { reg("lambda") }},
		{"peer rename", func() { put(&model.Peer{ID: ids["beta"], DNSLabel: "beta-two"}) }},
		{"display name change", func() { put(&model.Peer{ID: ids["delta"], Name: "Delta laptop"}) }},
		{"name back to its label", func() { put(&model.Peer{ID: ids["delta"], Name: "delta"}) }},
		{"peer delete", func() {
			if err := e.svc.Delete(ctx, e.acct, model.KindPeer, ids["eps"]); err != nil {
				t.Fatal(err)
			}
		}},
		{"route", func() {
			put(&model.Route{Network: netip.MustParsePrefix("10.20.0.0/24"), Peer: ids["zeta"], Groups: []string{allID}, Enabled: true})
		}},
		{"domain change", func() {
			if err := e.svc.UpdateSettings(ctx, e.acct, model.Settings{DNSDomain: "mesh.example"}); err != nil {
				t.Fatal(err)
			}
		}},
		{"rename after domain change", func() { put(&model.Peer{ID: ids["theta"], DNSLabel: "theta-two"}) }},
	}
	for _, st := range steps {
		st.change()
		r := s.next(t)
		if r.GetDelta() == nil {
			t.Fatalf("%s: got %v, want a delta", st.name, r)
		}
		m = netmap.Apply(m, r.GetDelta())
		sameMap(t, st.name, m, noPeerIDs(e.serverMap(t, alphaID)))
		_, wire := w.last(t, server, alpha)
		d := wire.GetDelta()
		if dd := d.GetDnsDelta(); len(dd.GetUpsertPeerRecords())+len(dd.GetRemovedPeerRecords()) > 0 {
			t.Fatalf("%s: the wire delta carries peer records: %v", st.name, dd)
		}
		checkCompactWire(t, st.name, d.GetDns(), d.GetUpsertPeers())
	}
	checkSameAnswers(t, "after the changes", m, e.serverMap(t, alphaID))
}

// checkCompactWire checks what a capable agent got on the wire: a peers'
// zone without records (derivation TTL set), no peer IDs, names only where
// they differ from the label.
func checkCompactWire(t *testing.T, what string, c *managementpb.DNSConfig, peers []*managementpb.RemotePeer) {
	t.Helper()
	if c != nil && (len(c.Zones[0].Records) > 0 || c.DerivedPeerRecordTtl != 300) {
		t.Fatalf("%s: wire DNS config has %d peer records, derivation TTL %d", what, len(c.Zones[0].Records), c.DerivedPeerRecordTtl)
	}
	for _, p := range peers {
		label, _, _ := strings.Cut(p.Fqdn, ".")
		if p.PeerId != "" || p.Name == label {
			t.Fatalf("%s: wire peer not compact: %v", what, p)
		}
	}
}

func allGroup(t *testing.T, a *model.Account) string {
	t.Helper()
	for id, g := range a.Groups {
		if g.Name == model.AllGroupName {
			return id
		}
	}
	t.Fatal("no All group")
	return ""
}

// checkSameAnswers feeds the agent's map and the server's map to two
// resolvers the way the engine does (client/engine/dns.go) and compares
// their answers for every peer: A and AAAA of the FQDN, A of the short
// name (search domain) and PTR of its address.
func checkSameAnswers(t *testing.T, what string, agent, server *managementpb.NetworkMap) {
	t.Helper()
	ra, rs := resolverFor(t, agent), resolverFor(t, server)
	ctx := context.Background()
	asked := 0
	for _, p := range server.Peers {
		ip, _, _ := strings.Cut(p.AllowedIps[0], "/")
		label, _, _ := strings.Cut(p.Fqdn, ".")
		rev, _ := mdns.ReverseAddr(ip)
		for _, q := range []struct {
			name  string
			qtype uint16
		}{{p.Fqdn, mdns.TypeA}, {p.Fqdn, mdns.TypeAAAA}, {label, mdns.TypeA}, {rev, mdns.TypePTR}} {
			a, err1 := ra.Query(ctx, q.name, q.qtype)
			b, err2 := rs.Query(ctx, q.name, q.qtype)
			if err1 != nil || err2 != nil || fmt.Sprint(a) != fmt.Sprint(b) {
				t.Fatalf("%s: %s %s: agent %+v (%v), server %+v (%v)", what, q.name, mdns.TypeToString[q.qtype], a, err1, b, err2)
			}
			if q.qtype != mdns.TypeAAAA && len(a.Records) != 1 {
				t.Fatalf("%s: %s %s: %d records", what, q.name, mdns.TypeToString[q.qtype], len(a.Records))
			}
			asked++
		}
	}
	if asked == 0 {
		t.Fatalf("%s: no peer to ask about", what)
	}
}

func resolverFor(t *testing.T, m *managementpb.NetworkMap) *dns.Resolver {
	t.Helper()
	r, err := dns.New(dns.Config{NoBypass: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	s := dns.Settings{SearchDomain: true, Domain: m.Dns.Domain}
	if p, err := netip.ParsePrefix(m.Self.Address); err == nil {
		s.OverlayPrefix = p.Masked()
	}
	for _, z := range m.Dns.Zones {
		dz := dns.Zone{Domain: z.Domain}
		for _, rec := range z.Records {
			dz.Records = append(dz.Records, dns.Record{Name: rec.Name, Type: rec.Type, Value: rec.Value, TTL: rec.Ttl})
		}
		s.Zones = append(s.Zones, dz)
	}
	r.Apply(s)
	return r
}

// An agent that declares nothing (every agent before issue 12) gets what
// it always got: uncompressed bodies, the full peers' zone and peers with
// IDs and names, in full maps and deltas.
func TestOldAgentGetsFullRecords(t *testing.T) {
	e := startEnv(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	plain := e.setupKey(t, management.SetupKeyInput{Reusable: true})
	var agent keys.Private
	var agentID, betaID string
	for i := range 12 {
		k := mgmttest.NewKey(t)
		resp, err := e.client.Login(ctx, k, &managementpb.LoginRequest{SetupKey: plain, Hostname: fmt.Sprintf("host%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0:
			agent, agentID = k, resp.GetPeerConfig().GetPeerId()
		case 1:
			betaID = resp.GetPeerConfig().GetPeerId()
		}
	}
	snap, _ := e.svc.Snapshot(e.acct)
	allID := allGroup(t, snap)
	if _, err := e.svc.Put(ctx, e.acct, &model.Policy{Name: "mesh", Enabled: true, Rules: []model.PolicyRule{{
		Sources: []string{allID}, Destinations: []string{allID}, Bidirectional: true, Action: model.ActionAccept}}}); err != nil {
		t.Fatal(err)
	}

	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	server := e.svc.ServerKey().Public()
	ms, nonce := stamped()
	body, _ := proto.Marshal(&managementpb.SyncRequest{Meta: &managementpb.PeerMeta{Hostname: "host0"}, SentUnixMs: ms, Nonce: nonce})
	sealed, err := seal.Seal(body, server, agent)
	if err != nil {
		t.Fatal(err)
	}
	pub := agent.Public()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := managementpb.NewManagementClient(conn).Sync(sctx, &managementpb.EncryptedMessage{WgPublicKey: pub[:], Body: sealed, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	recv := func() *managementpb.SyncResponse {
		t.Helper()
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetCompression() != managementpb.Compression_COMPRESSION_NONE {
			t.Fatalf("an old agent got compression %v", m.GetCompression())
		}
		plain, err := seal.Open(m.GetBody(), server, agent)
		if err != nil {
			t.Fatal(err)
		}
		r := &managementpb.SyncResponse{}
		if err := proto.Unmarshal(plain, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	full := recv().GetFull()
	sameMap(t, "old agent's full map", full, e.serverMap(t, agentID))
	if n := len(full.GetDns().GetZones()[0].GetRecords()); n != 11 || full.GetDns().GetDerivedPeerRecordTtl() != 0 {
		t.Fatalf("old agent's peer zone: %d records, derivation TTL %d", n, full.GetDns().GetDerivedPeerRecordTtl())
	}
	if p := full.Peers[0]; p.PeerId == "" || p.Name == "" {
		t.Fatalf("old agent's peer lacks ID or name: %v", p)
	}
	if _, err := e.svc.Put(ctx, e.acct, &model.Peer{ID: betaID, DNSLabel: "beta-two"}); err != nil {
		t.Fatal(err)
	}
	d := recv().GetDelta()
	dd := d.GetDnsDelta()
	if len(dd.GetUpsertPeerRecords()) != 1 || dd.UpsertPeerRecords[0].Name != "beta-two.petrel.internal." ||
		!slices.Equal(dd.GetRemovedPeerRecords(), []string{"host1.petrel.internal."}) {
		t.Fatalf("old agent's rename delta: %v", d)
	}
	sameMap(t, "old agent after a rename", netmap.Apply(full, d), e.serverMap(t, agentID))
}
