package management

import (
	"net/netip"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/management/model"
	"petrel/proto/managementpb"
)

// FuzzRouteReport feeds arbitrary ReportPeersRequest bytes to the route
// part of ReportPeers: it never panics, and what it accepts names only
// networks the account routes through routing peers that serve them, with
// short printable reasons and a Since within the cap.
func FuzzRouteReport(f *testing.F) {
	var sender, router, other keys.Public
	sender[0], router[0], other[0] = 1, 2, 3
	s := &Service{byKey: map[keys.Public]peerRef{
		sender: {"acct", "p-sender"}, router: {"acct", "p-router"}, other: {"other", "p-other"}}}
	a := &model.Account{
		Groups: map[string]*model.Group{"g": {ID: "g", PeerIDs: []string{"p-router"}}},
		Routes: map[string]*model.Route{
			"r1": {ID: "r1", Network: netip.MustParsePrefix("10.20.0.0/24"), Peer: "p-router", Enabled: true},
			"r2": {ID: "r2", Network: netip.MustParsePrefix("0.0.0.0/0"), PeerGroups: []string{"g"}, Enabled: true},
			"r3": {ID: "r3", Network: netip.MustParsePrefix("10.40.0.0/24"), Peer: "p-router"},
		}}
	ref := peerRef{"acct", "p-sender"}
	for _, req := range []*managementpb.ReportPeersRequest{
		{Full: true, Routes: []*managementpb.RouteReport{{Network: "10.20.0.0/24", PeerPublicKey: router[:], Reason: "connected, direct", ActiveMs: 1000}}},
		{Routes: []*managementpb.RouteReport{{Network: "0.0.0.0/0", PeerPublicKey: router[:], Reason: "failover\x1b", ActiveMs: 1 << 63}}},
		{Routes: []*managementpb.RouteReport{{Network: "10.40.0.0/24", PeerPublicKey: other[:]}}, RemovedNetworks: []string{"10.20.0.9/24"}},
		{Routes: []*managementpb.RouteReport{{Network: "10.20.0.0/33", PeerPublicKey: router[:5]}}},
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		req := &managementpb.ReportPeersRequest{}
		if proto.Unmarshal(b, req) != nil {
			return
		}
		u, err := s.routeUpdateOf(ref, a, req, now)
		if err != nil {
			if KindOf(err) != KindInvalid {
				t.Fatalf("error of kind %v: %v", KindOf(err), err)
			}
			return
		}
		for n, c := range u.upserts {
			if n != "10.20.0.0/24" && n != "0.0.0.0/0" || c.Router != "p-router" {
				t.Fatalf("accepted %s through %s", n, c.Router)
			}
			if len(c.Reason) > maxReportReason || cleanReason(c.Reason) != c.Reason {
				t.Fatalf("reason %q kept", c.Reason)
			}
			if c.Since.After(now) || c.Since.Before(now.Add(-maxRouteActive)) {
				t.Fatalf("since %v out of bounds", c.Since)
			}
		}
	})
}
