package management

import (
	"google.golang.org/protobuf/proto"

	"petrel/management/model"
	"petrel/management/netmap"
)

// Limits on what one account may hold (issue 12). They keep every compiled
// network map receivable by current agents (see DefaultMaxMapBytes) and the
// in-memory state bounded. A mutation that would exceed one is refused with
// KindInvalid (REST 400, gRPC InvalidArgument) and changes nothing. An account
// already over a count limit (stored before the limit existed) may still
// edit and delete; only growing the count further is refused.
const (
	MaxRulesPerPolicy   = 1000  // rules in one policy
	MaxPortsPerRule     = 64    // port ranges in one rule
	MaxGroupsPerRule    = 100   // groups on each side (sources, destinations) of a rule
	MaxRulesPerAccount  = 10000 // rules over all policies of an account
	MaxGroups           = 10000
	MaxPolicies         = 1000
	MaxRoutes           = 1000
	MaxNameserverGroups = 100
	MaxZones            = 100
	MaxRecordsPerZone   = 1000
	MaxSetupKeys        = 1000
	MaxAdminTokens      = 100

	// DefaultMaxMapBytes is the default Config.MaxMapBytes: 15 MiB of
	// encoded map, measured as older agents get it (with the peers' DNS
	// records, uncompressed), the most any agent can get. A map under it
	// reaches every agent that declares CAPABILITY_ZSTD even if it did not
	// compress at all: its sealed Sync message (map, server config, 40
	// bytes of seal) stays under the 16 MiB internal/seal opens and
	// agents receive (grpcapi.MaxBody, mgmt.MaxReceiveMessage). Compressed,
	// such a map is 3-5 times smaller on the wire. A 50,000-peer mesh
	// encodes to about 10 MB. Older agents (4 MiB gRPC limit) cannot take
	// maps over 4 MiB; the server tells them to upgrade (ResourceExhausted)
	// rather than send what they would fail to receive.
	DefaultMaxMapBytes = 15 << 20
)

func rulesOf(a *model.Account) int {
	n := 0
	for _, p := range a.Policies {
		n += len(p.Rules)
	}
	return n
}

// checkLimits refuses a mutation that takes an account count over its
// limit (and above what cur already holds).
func checkLimits(cur, next *model.Account) error {
	counts := []struct {
		what      string
		old, new_ int
		max       int
	}{
		{"groups", len(cur.Groups), len(next.Groups), MaxGroups},
		{"policies", len(cur.Policies), len(next.Policies), MaxPolicies},
		{"policy rules", rulesOf(cur), rulesOf(next), MaxRulesPerAccount},
		{"routes", len(cur.Routes), len(next.Routes), MaxRoutes},
		{"nameserver groups", len(cur.NameserverGroups), len(next.NameserverGroups), MaxNameserverGroups},
		{"DNS zones", len(cur.DNSZones), len(next.DNSZones), MaxZones},
		{"setup keys", len(cur.SetupKeys), len(next.SetupKeys), MaxSetupKeys},
		{"admin tokens", len(cur.AdminTokens), len(next.AdminTokens), MaxAdminTokens},
	}
	for _, c := range counts {
		if c.new_ > c.max && c.new_ > c.old {
			return Errorf(KindInvalid, "an account may hold at most %d %s (this change would make %d)", c.max, c.what, c.new_)
		}
	}
	return nil
}

// checkMapSize refuses a snapshot in which the full network map of a peer
// the change can grow would encode to more than max bytes: such a map would
// break that agent's Sync for good. Structural changes (groups, policies,
// routes, nameservers, zones, settings) check one peer per view and every
// routing peer; registrations check the added peers; other changes none.
func checkMapSize(prev, snap *netmap.Snapshot, ch netmap.Change, max int) error {
	if max <= 0 {
		return nil
	}
	structural := ch.Settings || len(ch.Groups)+len(ch.Policies)+len(ch.Routes)+len(ch.NameserverGroups)+len(ch.Zones) > 0
	// Peer edits, re-authentication and meta updates do not grow maps
	// meaningfully and must never be refused (that would break an agent's
	// Login or Sync); new peers grow every map that sees them, their own
	// among the largest.
	peers := ch.PeersAdded
	if !structural && len(peers) == 0 {
		return nil
	}
	id, size := snap.LargestMap(structural, peers)
	if size > max {
		// An account already over the limit (stored before it existed) must
		// be able to shrink: a change that does not grow that map passes.
		if pm, err := prev.Map(id); err == nil && proto.Size(pm) >= size {
			return nil
		}
		return Errorf(KindInvalid, "this change would make the network map of peer %q %d bytes, over the limit of %d bytes; use fewer or broader rules, groups or routes", id, size, max)
	}
	return nil
}
