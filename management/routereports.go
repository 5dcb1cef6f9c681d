package management

import (
	"net/netip"
	"slices"
	"time"

	"petrel/internal/keys"
	"petrel/management/model"
	"petrel/proto/managementpb"
)

// Route reports ride in ReportPeersRequest (routes, removed_networks):
// each agent names, per network it sends through a routing peer, the
// routing peer it uses (its HA choice), why and for how long. The server
// keeps them beside the path report of the same agent (so they go when its
// Sync stream opens or ends), counts per routing peer the clients that use
// it (RouteHealth) and keeps, per account and network, the last
// maxFailovers changes of routing peer the agents reported.

// Route report bounds: maxFailovers changes kept per network; a reported
// active time is capped at maxRouteActive.
const (
	maxFailovers   = 20
	maxRouteActive = 400 * 24 * time.Hour
)

// RouteChoice is one agent's active routing peer for one network.
type RouteChoice struct {
	Router string    // routing peer ID
	Reason string    // why the agent chose it when it became active
	Since  time.Time // when it became active (arrival minus the reported active time)
}

// Failover is one agent's change of routing peer for a network.
type Failover struct {
	At       time.Time // when the agent switched (its Since)
	Client   string    // the agent's peer ID
	From, To string    // routing peer IDs
	Reason   string
}

// RouteUse is how an account's agents use one routed network now.
type RouteUse struct {
	Active  map[string]int // by routing peer ID: agents that send the network through it
	Clients int            // agents reporting the network
	History []Failover     // latest reported first, at most maxFailovers
}

// routeUpdate is a validated route part of a report: what to upsert and
// what to remove, by network.
type routeUpdate struct {
	upserts  map[string]RouteChoice
	removed  []string
	networks map[string]bool // every network the account routes now
}

// routedNetworks is every enabled network of a and its routing peers' IDs.
func routedNetworks(a *model.Account) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, r := range a.Routes {
		if !r.Enabled || !r.Network.IsValid() {
			continue
		}
		n := r.Network.Masked().String()
		if out[n] == nil {
			out[n] = map[string]bool{}
		}
		if r.Peer != "" {
			out[n][r.Peer] = true
		}
		for _, g := range r.PeerGroups {
			if grp := a.Groups[g]; grp != nil {
				for _, id := range grp.PeerIDs {
					out[n][id] = true
				}
			}
		}
	}
	return out
}

// parseNetwork reads a reported network as the map writes it (masked).
func parseNetwork(s string) (string, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", Errorf(KindInvalid, "report peers: network %.40q is not a prefix", s)
	}
	return p.Masked().String(), nil
}

// routeUpdateOf validates the route part of req from the peer ref, at
// now. Malformed entries (a network that is no prefix, a key that is not
// 32 bytes) and more entries than the account has networks are
// KindInvalid; networks the account does not route and routing peers that
// do not serve them (or are the sender) are ignored; reasons are cleaned.
func (s *Service) routeUpdateOf(ref peerRef, a *model.Account, req *managementpb.ReportPeersRequest, now time.Time) (routeUpdate, error) {
	nets := routedNetworks(a)
	u := routeUpdate{upserts: map[string]RouteChoice{}, networks: map[string]bool{}}
	for n := range nets {
		u.networks[n] = true
	}
	if n := len(req.GetRoutes()) + len(req.GetRemovedNetworks()); n > len(nets) {
		return u, Errorf(KindInvalid, "report peers: %d route entries for an account routing %d networks", n, len(nets))
	}
	for _, e := range req.GetRoutes() {
		n, err := parseNetwork(e.GetNetwork())
		if err != nil {
			return u, err
		}
		pk, err := keys.PublicFromBytes(e.GetPeerPublicKey())
		if err != nil {
			return u, Errorf(KindInvalid, "report peers: network %s: routing peer key of %d bytes, want 32", n, len(e.GetPeerPublicKey()))
		}
		r, ok := s.lookupKey(pk)
		if !ok || r.accountID != ref.accountID || r.peerID == ref.peerID || !nets[n][r.peerID] {
			continue
		}
		active := time.Duration(min(e.GetActiveMs(), uint64(maxRouteActive.Milliseconds()))) * time.Millisecond
		u.upserts[n] = RouteChoice{Router: r.peerID, Reason: cleanReason(e.GetReason()), Since: now.Add(-active)}
	}
	for _, rn := range req.GetRemovedNetworks() {
		n, err := parseNetwork(rn)
		if err != nil {
			return u, err
		}
		u.removed = append(u.removed, n)
	}
	return u, nil
}

// applyRoutes brings rep's route choices up to date with u (full: u
// replaces them) and records each change of routing peer in the
// account's history (r.mu held).
func (r *pathReports) applyRoutes(rep *peerReport, clientID string, u routeUpdate, full bool) {
	if rep.routes == nil {
		rep.routes = map[string]RouteChoice{}
	}
	if full {
		for n := range rep.routes {
			if _, ok := u.upserts[n]; !ok {
				delete(rep.routes, n)
			}
		}
	}
	for _, n := range u.removed {
		delete(rep.routes, n)
	}
	hist := r.history[rep.accountID]
	for n, c := range u.upserts {
		if old, ok := rep.routes[n]; ok && old.Router != c.Router {
			if hist == nil {
				hist = map[string][]Failover{}
				if r.history == nil {
					r.history = map[string]map[string][]Failover{}
				}
				r.history[rep.accountID] = hist
			}
			h := append(hist[n], Failover{At: c.Since, Client: clientID, From: old.Router, To: c.Router, Reason: c.Reason})
			if len(h) > maxFailovers {
				h = slices.Clone(h[len(h)-maxFailovers:])
			}
			hist[n] = h
		}
		rep.routes[n] = c
	}
	// History of networks the account no longer routes goes.
	for n := range hist {
		if !u.networks[n] {
			delete(hist, n)
		}
	}
}

// RouteChoices returns a copy of the route choices peerID reported (nil
// without a report), by network.
func (s *Service) RouteChoices(peerID string) map[string]RouteChoice {
	r := &s.hub.watch.paths
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := r.byPeer[peerID]
	if rep == nil || rep.routes == nil {
		return nil
	}
	out := make(map[string]RouteChoice, len(rep.routes))
	for n, c := range rep.routes {
		out[n] = c
	}
	return out
}

// RouteHealth returns, per network the account routes (masked prefix, as
// in model.Route.Network.Masked()), how many agents with a live Sync
// stream send it through each routing peer, and the last changes of
// routing peer they reported. Networks no agent reports and without
// history are absent.
func (s *Service) RouteHealth(accountID string) (map[string]RouteUse, error) {
	st, err := s.account(accountID)
	if err != nil {
		return nil, err
	}
	a := st.view().acct
	nets := routedNetworks(a)
	out := map[string]RouteUse{}
	use := func(n string) RouteUse {
		u, ok := out[n]
		if !ok {
			u = RouteUse{Active: map[string]int{}}
		}
		return u
	}
	r := &s.hub.watch.paths
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range a.Peers {
		rep := r.byPeer[id]
		if rep == nil || rep.accountID != accountID {
			continue
		}
		for n, c := range rep.routes {
			if nets[n] == nil {
				continue
			}
			u := use(n)
			u.Active[c.Router]++
			u.Clients++
			out[n] = u
		}
	}
	for n, h := range r.history[accountID] {
		if nets[n] == nil || len(h) == 0 {
			continue
		}
		u := use(n)
		u.History = slices.Clone(h)
		slices.Reverse(u.History)
		out[n] = u
	}
	return out, nil
}
