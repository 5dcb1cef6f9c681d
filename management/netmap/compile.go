package netmap

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"petrel/management/model"
	mpb "petrel/proto/managementpb"
)

// rule is one enabled policy rule with its four possible firewall messages
// (shared by every map that holds them).
type rule struct {
	policyID string
	key      string // rule ID, or policyID#index when the rule has none
	src, dst []string
	accept   bool
	proto    model.Protocol
	ports    []model.PortRange
	bidir    bool
	// inFwd: P ∈ dst, from src. outFwd: P ∈ src, to dst.
	// outRev: P ∈ dst, to src (bidirectional). inRev: P ∈ src, from dst.
	inFwd, outFwd, outRev, inRev *mpb.FirewallRule
}

// route is one enabled route expanded to its routing peers.
type route struct {
	id      string
	haKey   string // NetworkID + network: HA alternatives share it
	network string
	dist    []string
	routers []*peerEntry
	msgs    []*mpb.Route // aligned with routers: the entries other peers get
}

// servedRoute is a route as one of its routing peers serves it.
type servedRoute struct {
	r   *route
	own *mpb.Route // the router's own entry: r's msg plus source_sets
}

type nsGroup struct {
	groups []string
	msg    *mpb.NameserverGroup
}

// routeRef is one Route entry of a view.
type routeRef struct {
	msg     *mpb.Route
	router  string // routing peer ID
	haKey   string
	network string
}

// view is everything a map needs that depends only on the peer's group set
// (and on group contents for routing peers). Shared by all peers with the
// same group set.
type view struct {
	groups     []string
	visGroups  []string // groups whose members are visible through accept rules
	allVisible bool     // visGroups holds the All group
	setIDs     []string // peer sets referenced by fw
	fw         []*mpb.FirewallRule
	routes     []routeRef   // sorted like the map's routes
	routeMsgs  []*mpb.Route // msg of routes, for peers that route none of them
	routed     map[string][]routeRef
	routedRP   map[string]*mpb.RemotePeer // routing peer → RemotePeer with its networks
	ns         []*mpb.NameserverGroup
}

func protoOf(p model.Protocol) mpb.FirewallRule_Protocol {
	switch p {
	case model.ProtoTCP:
		return mpb.FirewallRule_TCP
	case model.ProtoUDP:
		return mpb.FirewallRule_UDP
	case model.ProtoICMP:
		return mpb.FirewallRule_ICMP
	}
	return mpb.FirewallRule_ALL
}

func (s *Snapshot) compileRules() {
	s.rules = nil
	pids := make([]string, 0, len(s.acct.Policies))
	for id, p := range s.acct.Policies {
		if p.Enabled {
			pids = append(pids, id)
		}
	}
	slices.Sort(pids)
	for _, pid := range pids {
		for i := range s.acct.Policies[pid].Rules {
			s.rules = append(s.rules, newRule(pid, i, &s.acct.Policies[pid].Rules[i]))
		}
	}
	// DROP before ACCEPT; stable keeps policy ID and rule position order.
	slices.SortStableFunc(s.rules, func(a, b *rule) int {
		if a.accept == b.accept {
			return 0
		}
		if !a.accept {
			return -1
		}
		return 1
	})
	s.groupRules = make(map[string][]int)
	for i, r := range s.rules {
		for _, g := range r.src {
			s.groupRules[g] = append(s.groupRules[g], i)
		}
		for _, g := range r.dst {
			s.groupRules[g] = append(s.groupRules[g], i)
		}
	}
}

func newRule(pid string, idx int, pr *model.PolicyRule) *rule {
	r := &rule{
		policyID: pid, key: pr.ID, src: sortedSet(pr.Sources), dst: sortedSet(pr.Destinations),
		accept: pr.Action != model.ActionDrop, proto: pr.Protocol, bidir: pr.Bidirectional,
	}
	if r.key == "" {
		r.key = pid + "#" + strconv.Itoa(idx)
	}
	if r.proto == "" {
		r.proto = model.ProtoAll
	}
	var ports []*mpb.PortRange
	if r.proto == model.ProtoTCP || r.proto == model.ProtoUDP {
		r.ports = pr.Ports
		for _, p := range pr.Ports {
			ports = append(ports, &mpb.PortRange{Start: uint32(p.Start), End: uint32(max(p.End, p.Start))})
		}
	}
	action := mpb.FirewallRule_ACCEPT
	if !r.accept {
		action = mpb.FirewallRule_DROP
	}
	mk := func(suffix string, dir mpb.FirewallRule_Direction, sets []string) *mpb.FirewallRule {
		return &mpb.FirewallRule{
			Id: r.key + "/" + suffix, Direction: dir, Action: action, Protocol: protoOf(r.proto),
			Ports: ports, PeerSets: sets, PolicyId: pid,
		}
	}
	r.inFwd = mk("in", mpb.FirewallRule_IN, r.src)
	r.outFwd = mk("out", mpb.FirewallRule_OUT, r.dst)
	if r.bidir {
		r.outRev = mk("out-rev", mpb.FirewallRule_OUT, r.src)
		r.inRev = mk("in-rev", mpb.FirewallRule_IN, r.dst)
	}
	return r
}

func (s *Snapshot) compileRoutes() {
	s.routes = nil
	s.routerOf = make(map[string][]servedRoute)
	ids := make([]string, 0, len(s.acct.Routes))
	for id, r := range s.acct.Routes {
		if r.Enabled && r.Network.IsValid() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		mr := s.acct.Routes[id]
		r := &route{id: id, network: mr.Network.Masked().String(), dist: sortedSet(mr.Groups)}
		nid := mr.NetworkID
		if nid == "" {
			nid = id
		}
		r.haKey = nid + "|" + r.network
		if e := s.peers[mr.Peer]; e != nil {
			r.routers = append(r.routers, e)
		}
		for _, g := range mr.PeerGroups {
			m, _ := s.members(g)
			r.routers = append(r.routers, m...)
		}
		slices.SortFunc(r.routers, cmpEntry)
		r.routers = slices.Compact(r.routers)
		for _, e := range r.routers {
			mk := func(sources []string) *mpb.Route {
				return &mpb.Route{
					Id: id + "/" + e.id, NetworkId: nid, Network: r.network, PeerPublicKey: e.rp.PublicKey,
					Metric: int32(mr.Metric), Masquerade: mr.Masquerade, AutoApply: mr.AutoApply,
					SourceSets: sources,
				}
			}
			// The router's own entry also names who may use the route: the
			// sets of its distribution groups (mapOf puts them in its map).
			own := mk(slices.Clip(r.dist))
			r.msgs = append(r.msgs, mk(nil))
			s.routerOf[e.id] = append(s.routerOf[e.id], servedRoute{r: r, own: own})
		}
		s.routes = append(s.routes, r)
	}
}

func (s *Snapshot) compileNS() {
	s.ns = nil
	ids := make([]string, 0, len(s.acct.NameserverGroups))
	for id, n := range s.acct.NameserverGroups {
		if n.Enabled {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		n := s.acct.NameserverGroups[id]
		msg := &mpb.NameserverGroup{Id: id, Domains: slices.Clone(n.Domains), Primary: n.Primary}
		for _, ap := range n.Nameservers {
			msg.Nameservers = append(msg.Nameservers, ap.String())
		}
		s.ns = append(s.ns, &nsGroup{groups: sortedSet(n.Groups), msg: msg})
	}
}

func fqdnOf(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

func (s *Snapshot) compileZones() {
	s.zones = nil
	ids := make([]string, 0, len(s.acct.DNSZones))
	for id := range s.acct.DNSZones {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		return cmp.Or(strings.Compare(fqdnOf(s.acct.DNSZones[a].Domain), fqdnOf(s.acct.DNSZones[b].Domain)), strings.Compare(a, b))
	})
	for _, id := range ids {
		z := s.acct.DNSZones[id]
		cz := &mpb.CustomZone{Domain: fqdnOf(z.Domain)}
		for _, r := range z.Records {
			name := r.Name
			switch {
			case name == "@" || name == "":
				name = cz.Domain
			case strings.HasSuffix(name, "."):
				name = strings.ToLower(name)
			default:
				name = strings.ToLower(name) + "." + cz.Domain
			}
			ttl := r.TTL
			if ttl == 0 {
				ttl = peerRecordTTL
			}
			cz.Records = append(cz.Records, &mpb.SimpleRecord{Name: name, Type: strings.ToUpper(r.Type), Ttl: ttl, Value: r.Value})
		}
		slices.SortFunc(cz.Records, func(a, b *mpb.SimpleRecord) int {
			return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Type, b.Type),
				strings.Compare(a.Value, b.Value), cmp.Compare(a.Ttl, b.Ttl))
		})
		s.zones = append(s.zones, cz)
	}
}

// buildViews fills s.views for every group set present, reusing views from
// old (nil: build all).
func (s *Snapshot) buildViews(old map[string]*view) {
	for _, e := range s.sorted {
		if _, ok := s.views[e.sig]; ok {
			continue
		}
		if v := old[e.sig]; v != nil {
			s.views[e.sig] = v
			continue
		}
		s.views[e.sig] = s.newView(e.groups)
	}
}

func (s *Snapshot) newView(groups []string) *view {
	v := &view{groups: groups}
	var idx []int
	for _, g := range groups {
		idx = append(idx, s.groupRules[g]...)
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	var vis, sets []string
	for _, i := range idx {
		r := s.rules[i]
		inSrc, inDst := intersects(groups, r.src), intersects(groups, r.dst)
		if inDst {
			v.fw = append(v.fw, r.inFwd)
			sets = append(sets, r.src...)
			if r.accept {
				vis = append(vis, r.src...)
			}
		}
		if inSrc {
			v.fw = append(v.fw, r.outFwd)
			sets = append(sets, r.dst...)
			if r.accept {
				vis = append(vis, r.dst...)
			}
		}
		if r.bidir && inDst {
			v.fw = append(v.fw, r.outRev)
		}
		if r.bidir && inSrc {
			v.fw = append(v.fw, r.inRev)
		}
	}
	v.visGroups, v.setIDs = sortedSet(vis), sortedSet(sets)
	_, v.allVisible = slices.BinarySearch(v.visGroups, s.allID)
	v.allVisible = v.allVisible && s.allID != ""
	for _, r := range s.routes {
		if !intersects(groups, r.dist) {
			continue
		}
		for i, e := range r.routers {
			ref := routeRef{msg: r.msgs[i], router: e.id, haKey: r.haKey, network: r.network}
			v.routes = append(v.routes, ref)
			if v.routed == nil {
				v.routed = map[string][]routeRef{}
			}
			v.routed[e.id] = append(v.routed[e.id], ref)
		}
	}
	slices.SortFunc(v.routes, func(a, b routeRef) int { return cmpRoute(a.msg, b.msg) })
	if len(v.routes) > 0 {
		v.routeMsgs = make([]*mpb.Route, len(v.routes))
		for i, ref := range v.routes {
			v.routeMsgs[i] = ref.msg
		}
	}
	v.fw = slices.Clip(v.fw)
	if len(v.routed) > 0 {
		v.routedRP = make(map[string]*mpb.RemotePeer, len(v.routed))
		for id, refs := range v.routed {
			v.routedRP[id] = withNetworks(s.peers[id].rp, refs, nil)
		}
	}
	for _, n := range s.ns {
		if intersects(groups, n.groups) {
			v.ns = append(v.ns, n.msg)
		}
	}
	v.ns = slices.Clip(v.ns)
	return v
}

// withNetworks returns a copy of rp whose allowed IPs also hold the networks
// of refs (except those in excluded HA groups); rp itself when none remain.
func withNetworks(rp *mpb.RemotePeer, refs []routeRef, excluded map[string]bool) *mpb.RemotePeer {
	var nets []string
	for _, ref := range refs {
		if !excluded[ref.haKey] {
			nets = append(nets, ref.network)
		}
	}
	if len(nets) == 0 {
		return rp
	}
	slices.Sort(nets)
	nets = slices.Compact(nets)
	host := rp.AllowedIps[0]
	ips := make([]string, 0, len(nets)+1)
	ips = append(ips, host)
	for _, n := range nets {
		if n != host {
			ips = append(ips, n)
		}
	}
	return &mpb.RemotePeer{PublicKey: rp.PublicKey, AllowedIps: ips, Fqdn: rp.Fqdn, Name: rp.Name, PeerId: rp.PeerId}
}

func cmpRoute(a, b *mpb.Route) int {
	return cmp.Or(strings.Compare(a.NetworkId, b.NetworkId), strings.Compare(a.Network, b.Network),
		cmp.Compare(a.Metric, b.Metric), strings.Compare(a.Id, b.Id), strings.Compare(a.PeerPublicKey, b.PeerPublicKey))
}
