package ui

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"petrel/management"
)

type userRow struct {
	ID, Email, Name, Role string
	Blocked, Self         bool
	Peers                 int
	Created, LastLogin    time.Time
}

func (h *Handler) usersData(rq *req) []userRow {
	peers := map[string]int{}
	for _, p := range rq.acct.Peers {
		if p.UserID != "" {
			peers[p.UserID]++
		}
	}
	var out []userRow
	for _, u := range rq.acct.Users {
		out = append(out, userRow{ID: u.ID, Email: display(u.Email), Name: display(u.Name), Role: string(u.Role),
			Blocked: u.Blocked, Self: u.ID == rq.p.UserID, Peers: peers[u.ID], Created: u.CreatedAt, LastLogin: u.LastLogin})
	}
	slices.SortFunc(out, func(a, b userRow) int { return cmp.Or(cmp.Compare(a.Email, b.Email), cmp.Compare(a.ID, b.ID)) })
	return out
}

func (h *Handler) users(rq *req) error {
	h.render(rq, http.StatusOK, "users", "Users", h.usersData(rq))
	return nil
}

// blockUser blocks or unblocks a user; the service enforces who may (not
// oneself, not the last owner) and audits it under the caller.
func (h *Handler) blockUser(block bool) func(*req) error {
	verb := "Unblocked "
	if block {
		verb = "Blocked "
	}
	return func(rq *req) error {
		return h.change(rq, oneChange{back: "/ui/users", fail: h.failOn(rq, "users", "Users", func() any { return h.usersData(rq) }),
			apply: func() (string, error) {
				u, err := h.svc.UpdateUser(rq.ctx(), rq.acct.ID, rq.r.PathValue("id"), management.UserUpdate{Blocked: &block})
				if err != nil {
					return "", err
				}
				return verb + display(u.Email) + ".", nil
			}})
	}
}
