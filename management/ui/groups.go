package ui

import (
	"cmp"
	"net/http"
	"slices"
	"strings"

	"petrel/management/model"
)

type groupRow struct {
	ID, Name   string
	Peers      int
	Implicit   bool // the All group: every peer, cannot be deleted
	IdPManaged bool
}

func (h *Handler) groupsData(rq *req) []groupRow {
	var out []groupRow
	for _, g := range rq.acct.Groups {
		out = append(out, groupRow{ID: g.ID, Name: display(g.Name), Peers: len(g.PeerIDs),
			Implicit: g.Name == model.AllGroupName, IdPManaged: g.IdPManaged})
	}
	slices.SortFunc(out, func(a, b groupRow) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return out
}

func (h *Handler) groups(rq *req) error {
	h.render(rq, http.StatusOK, "groups", "Groups", h.groupsData(rq))
	return nil
}

func (h *Handler) groupsError(rq *req, err error) error {
	status, fl := errFlash(err)
	h.render(rq, status, "groups", "Groups", h.groupsData(rq), fl)
	return nil
}

func (h *Handler) createGroup(rq *req) error {
	rq.r.Body = http.MaxBytesReader(rq.w, rq.r.Body, maxFormBytes)
	if err := rq.r.ParseForm(); err != nil {
		return h.groupsError(rq, badInput("unreadable form: %v", err))
	}
	name := strings.TrimSpace(rq.r.PostForm.Get("name"))
	if name == "" {
		return h.groupsError(rq, badInput("name is required"))
	}
	obj, err := h.svc.Put(rq.ctx(), rq.acct.ID, &model.Group{Name: name})
	if err != nil {
		return h.groupsError(rq, err)
	}
	return h.done(rq, "/ui/groups", "Created group "+display(obj.(*model.Group).Name)+".")
}

// deleteGroup deletes a group at once (no confirmation: the service
// refuses a group still in use).
func (h *Handler) deleteGroup(rq *req) error {
	fail := func(err error) error { return h.groupsError(rq, err) }
	g := rq.acct.Groups[rq.r.PathValue("id")]
	if g == nil {
		return fail(notFound("group %q not found", rq.r.PathValue("id")))
	}
	return h.change(rq, oneChange{back: "/ui/groups", fail: fail, apply: func() (string, error) {
		return "Deleted group " + display(g.Name) + ".", h.svc.Delete(rq.ctx(), rq.acct.ID, model.KindGroup, g.ID)
	}})
}
