package restapi

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"petrel/management"
	"petrel/management/model"
)

// Users are created by signing in (an agent's device flow or an OpenID
// access token on this API), so there is no POST: admins list, change
// (role, blocked) and delete them; everyone reads their own user as
// /api/users/me.

// me is the {id} that names the caller's own user.
const me = "me"

type userView struct {
	ID        string     `json:"id"`
	Email     string     `json:"email"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	Issuer    string     `json:"issuer"`
	Subject   string     `json:"subject"`
	Groups    []refView  `json:"groups"` // IdP groups of the last sign-in
	Blocked   bool       `json:"blocked"`
	CreatedAt *time.Time `json:"created_at"`
	LastLogin *time.Time `json:"last_login"`
	Peers     []refView  `json:"peers"` // peers the user registered
}

func (r resolver) userView(u *model.User) userView {
	peers := []refView{}
	for _, p := range r.a.Peers {
		if p.UserID == u.ID {
			peers = append(peers, refView{ID: p.ID, Name: p.Name})
		}
	}
	sortByName(peers, func(v refView) string { return v.Name }, func(v refView) string { return v.ID })
	groups := r.groupRefViews(u.Groups)
	sortByName(groups, func(v refView) string { return v.Name }, func(v refView) string { return v.ID })
	return userView{
		ID: u.ID, Email: u.Email, Name: u.Name, Role: string(u.Role), Issuer: u.Issuer, Subject: u.Subject,
		Groups: groups, Blocked: u.Blocked, CreatedAt: optTime(u.CreatedAt), LastLogin: optTime(u.LastLogin), Peers: peers,
	}
}

// pathUser returns the user the {id} path value names: "me" is the
// caller's own user (an admin token has none: 400). Users may name only
// themselves (403 otherwise).
func (s *server) pathUser(c *call) (resolver, *model.User, error) {
	r, err := s.resolver(c)
	if err != nil {
		return r, nil, err
	}
	id := c.r.PathValue("id")
	if id == me {
		if c.p.UserID == "" {
			return r, nil, invalidf("\"me\" names the signed-in user, but this is an admin token, which belongs to no user; give a user id (GET /api/users lists them)")
		}
		id = c.p.UserID
	}
	if !c.p.IsAdmin() && id != c.p.UserID {
		return r, nil, needAdmin(c.p)
	}
	u := r.a.Users[id]
	if u == nil {
		return r, nil, notFoundf("user %q not found", id)
	}
	return r, u, nil
}

func (s *server) listUsers(c *call) (int, any, error) {
	r, err := s.resolver(c)
	if err != nil {
		return 0, nil, err
	}
	out := make([]userView, 0, len(r.a.Users))
	for _, u := range r.a.Users {
		out = append(out, r.userView(u))
	}
	slices.SortFunc(out, func(a, b userView) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Email), strings.ToLower(b.Email)), cmp.Compare(a.ID, b.ID))
	})
	return http.StatusOK, out, nil
}

func (s *server) getUser(c *call) (int, any, error) {
	r, u, err := s.pathUser(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, r.userView(u), nil
}

func (s *server) deleteUser(c *call) (int, any, error) {
	_, u, err := s.pathUser(c)
	if err != nil {
		return 0, nil, err
	}
	if err := s.api.DeleteUser(c.r.Context(), c.account, u.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// userUpdateRequest is the body of PUT /api/users/{id}; an omitted member
// keeps its value.
type userUpdateRequest struct {
	Role    *string `json:"role"`
	Blocked *bool   `json:"blocked"`
}

// userReadOnly: everything but role and blocked. Groups, last_login and
// peers change as the user signs in.
var userReadOnly = readOnly{
	fixed: []string{"id", "email", "name", "issuer", "subject", "created_at"},
	live:  []string{"groups", "last_login", "peers"},
}

// userUpdater serves PUT and PATCH /api/users/{id}.
var userUpdater = updater{
	current: func(s *server, c *call) (any, error) {
		r, u, err := s.pathUser(c)
		if err != nil {
			return nil, err
		}
		return r.userView(u), nil
	},
	apply: (*server).applyUserUpdate,
}

// decodeUserUpdate decodes and checks a PUT /api/users/{id} body (with the
// read-only members already stripped).
func decodeUserUpdate(body []byte) (management.UserUpdate, error) {
	var req userUpdateRequest
	var up management.UserUpdate
	if err := decodeJSON(body, &req); err != nil {
		return up, err
	}
	if req.Role == nil && req.Blocked == nil {
		return up, invalidf("nothing to update: give \"role\" and/or \"blocked\"")
	}
	if req.Role != nil {
		role := model.Role(strings.ToLower(strings.TrimSpace(*req.Role)))
		switch role {
		case model.RoleOwner, model.RoleAdmin, model.RoleUser:
		default:
			return up, invalidf("role %q: want owner, admin or user", *req.Role)
		}
		up.Role = &role
	}
	up.Blocked = req.Blocked
	return up, nil
}

func (s *server) applyUserUpdate(c *call, body []byte) (int, any, error) {
	r, u, err := s.pathUser(c)
	if err != nil {
		return 0, nil, err
	}
	ed, err := userReadOnly.strip(body, r.userView(u))
	if err != nil {
		return 0, nil, err
	}
	up, err := decodeUserUpdate(ed.body)
	if err != nil {
		return 0, nil, err
	}
	stored, err := s.api.UpdateUser(c.r.Context(), c.account, u.ID, up)
	if err != nil {
		return 0, nil, err
	}
	r.a.Users[stored.ID] = stored
	return http.StatusOK, r.userView(stored), nil
}
