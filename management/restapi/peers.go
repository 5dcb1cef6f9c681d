package restapi

import (
	"net/http"
	"strings"

	"petrel/management/model"
)

// --- accounts ---

func (s *server) listAccounts(c *call) (int, any, error) {
	a, err := s.snapshot(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, []accountView{accountViewOf(a)}, nil
}

func (s *server) getAccount(c *call) (int, any, error) {
	a, err := s.snapshot(c)
	if err != nil {
		return 0, nil, err
	}
	if c.r.PathValue("id") != a.ID {
		return 0, nil, notFoundf("account %q not found", c.r.PathValue("id"))
	}
	return http.StatusOK, accountViewOf(a), nil
}

// --- peers ---

// peerUpdateRequest renames a peer; omitted fields keep their value.
type peerUpdateRequest struct {
	Name     *string `json:"name"`
	DNSLabel *string `json:"dns_label"`
}

// decodePeerUpdate decodes and checks a PUT /api/peers/{id} body.
func decodePeerUpdate(body []byte) (peerUpdateRequest, error) {
	var req peerUpdateRequest
	if err := decodeJSON(body, &req); err != nil {
		return req, err
	}
	if req.Name == nil && req.DNSLabel == nil {
		return req, invalidf("nothing to update: give \"name\" and/or \"dns_label\"")
	}
	if req.Name != nil {
		n := strings.TrimSpace(*req.Name)
		if n == "" {
			return req, invalidf("name must not be empty")
		}
		req.Name = &n
	}
	if req.DNSLabel != nil {
		l := strings.ToLower(strings.TrimSpace(*req.DNSLabel))
		if l == "" {
			return req, invalidf("dns_label must not be empty")
		}
		req.DNSLabel = &l
	}
	return req, nil
}

// peerResource serves /api/peers; peers are created by agents logging in,
// so only update (a rename) is written out below.
var peerResource = &resource[*model.Peer, peerView]{
	all:  func(a *model.Account) map[string]*model.Peer { return a.Peers },
	find: byRef(resolver.peer),
	viewer: func(s *server, r resolver) func(*model.Peer) peerView {
		groups := r.peerGroups()
		now := s.now()
		return func(p *model.Peer) peerView {
			connected, lastSeen := s.api.PeerStatus(r.a.ID, p.ID)
			return r.peerView(p, groups[p.ID], connected, lastSeen, now)
		}
	},
	name: func(v peerView) string { return v.Name },
	id:   func(v peerView) string { return v.ID },
	// Users reach their own peers (those they registered by signing in);
	// setup-key peers belong to no user.
	owner:   func(p *model.Peer) string { return p.UserID },
	ownedBy: userPeers,
	others:  "peer belongs to another user; you can see and change only the peers you registered by signing in",
}

// userPeers returns a shallow copy of a whose Peers are only userID's.
func userPeers(a *model.Account, userID string) *model.Account {
	cp := *a
	cp.Peers = make(map[string]*model.Peer)
	for id, p := range a.Peers {
		if p.UserID == userID {
			cp.Peers[id] = p
		}
	}
	return &cp
}

// peerUpdater serves PUT and PATCH /api/peers/{id}.
var peerUpdater = updater{current: peerResource.current, apply: (*server).applyPeerUpdate}

// peerReadOnly: everything but name and dns_label. The fqdn follows the
// dns_label; connected, last_seen and meta are reported by the agent;
// user, last_login, login_expired and disabled change as the peer's user
// signs in, expires or is blocked.
var peerReadOnly = readOnly{
	fixed:   []string{"id", "ip", "public_key", "groups", "created_at", "ephemeral", "user_id"},
	derived: []string{"fqdn"},
	live:    []string{"connected", "last_seen", "meta", "user", "last_login", "login_expired", "disabled"},
}

func (s *server) applyPeerUpdate(c *call, body []byte) (int, any, error) {
	r, p, err := peerResource.lookup(s, c)
	if err != nil {
		return 0, nil, err
	}
	view := peerResource.viewer(s, r)
	before := view(p)
	ed, err := peerReadOnly.strip(body, before)
	if err != nil {
		return 0, nil, err
	}
	req, err := decodePeerUpdate(ed.body)
	if err != nil {
		return 0, nil, err
	}
	upd := *p
	if req.Name != nil {
		upd.Name = *req.Name
	}
	if req.DNSLabel != nil {
		upd.DNSLabel = *req.DNSLabel
	}
	if err := ed.checkDerived(before, view(&upd)); err != nil {
		return 0, nil, err
	}
	stored, err := putObject(s, c, &upd)
	if err != nil {
		return 0, nil, err
	}
	r.a.Peers[stored.ID] = stored
	return http.StatusOK, view(stored), nil
}

// --- groups ---

// groupRequest is the body of POST /api/groups and PUT /api/groups/{id}.
type groupRequest struct {
	Name  string `json:"name"`
	Peers []ref  `json:"peers"`
}

// decodeGroup decodes a group body and resolves its peer references.
func decodeGroup(r resolver, body []byte) (*model.Group, error) {
	var req groupRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	name := strings.TrimSpace(req.Name)
	if name == "" {
		return nil, invalidf("name is required")
	}
	peers, err := r.peerRefs("peers", req.Peers)
	if err != nil {
		return nil, err
	}
	return &model.Group{Name: name, PeerIDs: peers}, nil
}

// groupResource serves /api/groups; the path value may be a name.
var groupResource = &resource[*model.Group, groupView]{
	all:    func(a *model.Account) map[string]*model.Group { return a.Groups },
	find:   byRef(resolver.group),
	decode: decodeGroup,
	setID:  func(g *model.Group, id string) { g.ID = id },
	// peers_count follows peers; implicit marks the All group.
	readOnly: readOnly{fixed: []string{"id", "implicit"}, derived: []string{"peers_count"}},
	viewer:   func(_ *server, r resolver) func(*model.Group) groupView { return r.groupView },
	name:     func(v groupView) string { return v.Name },
	id:       func(v groupView) string { return v.ID },
}
