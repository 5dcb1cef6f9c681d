package restapi

import (
	"fmt"
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

// pathPeer resolves the {id} path value as a peer reference.
func (s *server) pathPeer(c *call) (resolver, *model.Peer, error) {
	r, err := s.resolver(c)
	if err != nil {
		return r, nil, err
	}
	p, rerr := r.peer(c.r.PathValue("id"))
	if rerr != nil {
		if rerr.ambiguous {
			return r, nil, invalidf("%s", rerr.msg)
		}
		return r, nil, notFoundf("%s", rerr.msg)
	}
	return r, p, nil
}

func (s *server) viewPeer(r resolver, groups map[string][]refView, p *model.Peer) peerView {
	connected, lastSeen := s.api.PeerStatus(r.a.ID, p.ID)
	return r.peerView(p, groups[p.ID], connected, lastSeen)
}

func (s *server) listPeers(c *call) (int, any, error) {
	r, err := s.resolver(c)
	if err != nil {
		return 0, nil, err
	}
	out := make([]peerView, 0, len(r.a.Peers))
	groups := r.peerGroups()
	for _, p := range r.a.Peers {
		out = append(out, s.viewPeer(r, groups, p))
	}
	sortByName(out, func(v peerView) string { return v.Name }, func(v peerView) string { return v.ID })
	return http.StatusOK, out, nil
}

func (s *server) getPeer(c *call) (int, any, error) {
	r, p, err := s.pathPeer(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, s.viewPeer(r, r.peerGroups(), p), nil
}

func (s *server) updatePeer(c *call) (int, any, error) {
	body, err := readBody(c.w, c.r)
	if err != nil {
		return 0, nil, err
	}
	req, err := decodePeerUpdate(body)
	if err != nil {
		return 0, nil, err
	}
	r, p, err := s.pathPeer(c)
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
	obj, err := s.api.Put(c.r.Context(), c.account, &upd)
	if err != nil {
		return 0, nil, err
	}
	stored, err := as[*model.Peer](obj)
	if err != nil {
		return 0, nil, err
	}
	r.a.Peers[stored.ID] = stored
	return http.StatusOK, s.viewPeer(r, r.peerGroups(), stored), nil
}

func (s *server) deletePeer(c *call) (int, any, error) {
	_, p, err := s.pathPeer(c)
	if err != nil {
		return 0, nil, err
	}
	if err := s.api.Delete(c.r.Context(), c.account, model.KindPeer, p.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// as converts a stored object returned by AdminAPI.Put to its type.
func as[T model.Object](obj model.Object) (T, error) {
	v, ok := obj.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("stored object has type %T, want %T", obj, zero)
	}
	return v, nil
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

func (s *server) pathGroup(c *call) (resolver, *model.Group, error) {
	r, err := s.resolver(c)
	if err != nil {
		return r, nil, err
	}
	g, rerr := r.group(c.r.PathValue("id"))
	if rerr != nil {
		if rerr.ambiguous {
			return r, nil, invalidf("%s", rerr.msg)
		}
		return r, nil, notFoundf("%s", rerr.msg)
	}
	return r, g, nil
}

func (s *server) listGroups(c *call) (int, any, error) {
	r, err := s.resolver(c)
	if err != nil {
		return 0, nil, err
	}
	out := make([]groupView, 0, len(r.a.Groups))
	for _, g := range r.a.Groups {
		out = append(out, r.groupView(g))
	}
	sortByName(out, func(v groupView) string { return v.Name }, func(v groupView) string { return v.ID })
	return http.StatusOK, out, nil
}

func (s *server) getGroup(c *call) (int, any, error) {
	r, g, err := s.pathGroup(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, r.groupView(g), nil
}

func (s *server) createGroup(c *call) (int, any, error) {
	return s.putGroup(c, false)
}

func (s *server) updateGroup(c *call) (int, any, error) {
	return s.putGroup(c, true)
}

func (s *server) putGroup(c *call, update bool) (int, any, error) {
	body, err := readBody(c.w, c.r)
	if err != nil {
		return 0, nil, err
	}
	r, err := s.resolver(c)
	if err != nil {
		return 0, nil, err
	}
	g, err := decodeGroup(r, body)
	if err != nil {
		return 0, nil, err
	}
	status := http.StatusCreated
	if update {
		_, old, err := s.pathGroup(c)
		if err != nil {
			return 0, nil, err
		}
		g.ID, status = old.ID, http.StatusOK
	}
	obj, err := s.api.Put(c.r.Context(), c.account, g)
	if err != nil {
		return 0, nil, err
	}
	stored, err := as[*model.Group](obj)
	if err != nil {
		return 0, nil, err
	}
	return status, r.groupView(stored), nil
}

func (s *server) deleteGroup(c *call) (int, any, error) {
	_, g, err := s.pathGroup(c)
	if err != nil {
		return 0, nil, err
	}
	if err := s.api.Delete(c.r.Context(), c.account, model.KindGroup, g.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
