package restapi

import (
	"net/netip"
	"strings"

	"petrel/management/model"
)

// routeRequest is the body of POST /api/routes and PUT /api/routes/{id}.
type routeRequest struct {
	Description string `json:"description"`
	NetworkID   string `json:"network_id"` // HA group name; default: the network
	Network     string `json:"network"`
	Peer        *ref   `json:"peer"`
	PeerGroups  []ref  `json:"peer_groups"`
	Groups      []ref  `json:"groups"`
	Metric      int    `json:"metric"`
	Masquerade  bool   `json:"masquerade"`
	Enabled     *bool  `json:"enabled"` // default true
	AutoApply   bool   `json:"auto_apply"`
}

// maxMetric bounds route metrics.
const maxMetric = 9999

// decodeRoute decodes a route body and resolves its references.
func decodeRoute(r resolver, body []byte) (*model.Route, error) {
	var req routeRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	pfx, err := netip.ParsePrefix(strings.TrimSpace(req.Network))
	if err != nil {
		return nil, invalidf("network %q: expected a CIDR prefix such as 10.20.0.0/24 or 0.0.0.0/0", req.Network)
	}
	// Host bits are refused here (the service would clear them). The
	// service also refuses networks overlapping the overlay and reserved
	// ranges (management.checkRouteNetwork).
	if pfx.Masked() != pfx {
		if pfx.Bits() == 0 {
			return nil, invalidf("network %s: an exit node is 0.0.0.0/0 or ::/0", pfx)
		}
		return nil, invalidf("network %s has host bits set; did you mean %s?", pfx, pfx.Masked())
	}
	if (req.Peer == nil) == (len(req.PeerGroups) == 0) {
		return nil, invalidf("give exactly one of \"peer\" (a routing peer) or \"peer_groups\"")
	}
	if req.Metric < 0 || req.Metric > maxMetric {
		return nil, invalidf("metric must be between 0 and %d", maxMetric)
	}
	rt := &model.Route{
		Description: req.Description, NetworkID: strings.TrimSpace(req.NetworkID), Network: pfx,
		Metric: req.Metric, Masquerade: req.Masquerade, Enabled: boolOr(req.Enabled, true), AutoApply: req.AutoApply,
	}
	if rt.NetworkID == "" {
		rt.NetworkID = pfx.String()
	}
	if req.Peer != nil {
		if rt.Peer, err = r.peerRef("peer", *req.Peer); err != nil {
			return nil, err
		}
	}
	if rt.PeerGroups, err = r.groupRefs("peer_groups", req.PeerGroups); err != nil {
		return nil, err
	}
	if len(req.Groups) == 0 {
		return nil, invalidf("groups: at least one distribution group is required (e.g. \"All\")")
	}
	if rt.Groups, err = r.groupRefs("groups", req.Groups); err != nil {
		return nil, err
	}
	return rt, nil
}

// routeResource serves /api/routes.
var routeResource = &resource[*model.Route, routeView]{
	all:    func(a *model.Account) map[string]*model.Route { return a.Routes },
	what:   "route",
	decode: decodeRoute,
	setID:  func(rt *model.Route, id string) { rt.ID = id },
	// exit_node follows network.
	readOnly: readOnly{fixed: []string{"id"}, derived: []string{"exit_node"}},
	viewer:   func(_ *server, r resolver) func(*model.Route) routeView { return r.routeView },
	name:     func(v routeView) string { return v.Network },
	id:       func(v routeView) string { return v.ID },
}

// --- nameserver groups ---

// nameserverGroupRequest is the body of POST/PUT /api/dns/nameservers.
type nameserverGroupRequest struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Nameservers []string `json:"nameservers"` // "ip" (port 53) or "ip:port"
	Domains     []string `json:"domains"`
	Primary     bool     `json:"primary"`
	Groups      []ref    `json:"groups"`
	Enabled     *bool    `json:"enabled"` // default true
}

// parseNameserver accepts "1.1.1.1", "1.1.1.1:53", "2606:4700::1111" and
// "[2606:4700::1111]:53".
func parseNameserver(s string) (netip.AddrPort, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, invalidf("nameserver %q: port must not be 0", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.AddrPortFrom(a.Unmap(), 53), nil
	}
	return netip.AddrPort{}, invalidf("nameserver %q: expected an IP address, optionally with :port", s)
}

// decodeNameserverGroup decodes a nameserver group body.
func decodeNameserverGroup(r resolver, body []byte) (*model.NameserverGroup, error) {
	var req nameserverGroupRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	n := &model.NameserverGroup{
		Name: strings.TrimSpace(req.Name), Description: req.Description, Primary: req.Primary,
		Enabled: boolOr(req.Enabled, true),
	}
	if n.Name == "" {
		return nil, invalidf("name is required")
	}
	if len(req.Nameservers) == 0 {
		return nil, invalidf("nameservers: at least one is required")
	}
	for i, s := range req.Nameservers {
		ap, err := parseNameserver(s)
		if err != nil {
			return nil, invalidf("nameservers[%d]: %s", i, err.Error())
		}
		n.Nameservers = append(n.Nameservers, ap)
	}
	for _, d := range req.Domains {
		d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
		if d == "" {
			return nil, invalidf("domains: empty domain")
		}
		n.Domains = append(n.Domains, d)
	}
	if !n.Primary && len(n.Domains) == 0 {
		return nil, invalidf("a nameserver group needs \"primary\": true or at least one match domain")
	}
	if len(req.Groups) == 0 {
		return nil, invalidf("groups: at least one group is required (e.g. \"All\")")
	}
	var err error
	if n.Groups, err = r.groupRefs("groups", req.Groups); err != nil {
		return nil, err
	}
	return n, nil
}

// nameserverGroupResource serves /api/dns/nameservers.
var nameserverGroupResource = &resource[*model.NameserverGroup, nameserverGroupView]{
	all:      func(a *model.Account) map[string]*model.NameserverGroup { return a.NameserverGroups },
	what:     "nameserver group",
	decode:   decodeNameserverGroup,
	setID:    func(n *model.NameserverGroup, id string) { n.ID = id },
	readOnly: readOnly{fixed: []string{"id"}},
	viewer: func(_ *server, r resolver) func(*model.NameserverGroup) nameserverGroupView {
		return r.nameserverGroupView
	},
	name: func(v nameserverGroupView) string { return v.Name },
	id:   func(v nameserverGroupView) string { return v.ID },
}
