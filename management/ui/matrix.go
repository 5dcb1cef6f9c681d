package ui

import (
	"fmt"
	"net/http"

	"petrel/management"
)

// matrixPerPage is the matrix page's side: rows and columns are the same
// page of peers (the peers page's filters and order).
const matrixPerPage = 50

// matrixCell is one pair as the matrix shows it.
type matrixCell struct {
	ID    string // "cell-ROW-COL"
	State string // a management.PairState, or "self"
	Text  string
	Title string
}

type matrixRow struct {
	ID, Name string
	Cells    []matrixCell
}

type matrixData struct {
	Filter      peerFilter
	Groups      []option
	Cols        []peerRow
	Rows        []matrixRow
	Total       int
	Page, Pages int
	CellsURL    string
	StreamURL   string
	PrevURL     string
	NextURL     string
	Filtered    bool
	Admin       bool
	// FilterAction is the page the filter form submits to.
	FilterAction string
}

// matrixData builds the page of f: its peers (those the viewer may see:
// users only their own, so only pairs of their own peers) as rows and
// columns.
func (h *Handler) matrixData(rq *req, f peerFilter) (matrixData, error) {
	d := matrixData{FilterAction: "/ui/matrix", Admin: rq.p.IsAdmin(), Filtered: f.Q != "" || f.Status != "" || f.Group != ""}
	d.Cols, d.Total, d.Pages, f.Page = h.matrixPage(rq, f)
	d.Page, d.Filter = f.Page, f
	ids := make([]string, len(d.Cols))
	for i, p := range d.Cols {
		ids[i] = p.ID
	}
	m, err := h.svc.Connectivity(rq.acct.ID, ids, ids)
	if err != nil {
		return d, err
	}
	for _, a := range d.Cols {
		row := matrixRow{ID: a.ID, Name: a.Name}
		for _, b := range d.Cols {
			row.Cells = append(row.Cells, cellOf(a, b, m.Pair(a.ID, b.ID)))
		}
		d.Rows = append(d.Rows, row)
	}
	q := f.values(true).Encode()
	d.CellsURL = "/ui/matrix/cells?" + q
	// The stream tells this page of path changes of its own peers only.
	d.StreamURL = "/ui/events/stream?" + matrixStreamParam + "=1"
	if q != "" {
		d.StreamURL += "&" + q
	}
	link := func(page int) string {
		g := f
		g.Page = page
		return "/ui/matrix?" + g.values(true).Encode()
	}
	if f.Page > 1 {
		d.PrevURL = link(f.Page - 1)
	}
	if f.Page < d.Pages {
		d.NextURL = link(f.Page + 1)
	}
	if d.Admin {
		d.Groups = groupOptions(rq.acct, f.Group)
	}
	return d, nil
}

// matrixPage returns the peers of f's page of the matrix (f.Page clipped
// to the pages there are), how many match f, the number of pages and the
// page.
func (h *Handler) matrixPage(rq *req, f peerFilter) (page []peerRow, total, pages, n int) {
	peers := h.matching(rq, f)
	pages = max(1, (len(peers)+matrixPerPage-1)/matrixPerPage)
	n = min(f.Page, pages)
	start := (n - 1) * matrixPerPage
	return peers[start:min(len(peers), start+matrixPerPage)], len(peers), pages, n
}

// matrixStreamParam in the event stream's query says that the stream
// serves a matrix page, whose filters and page the rest of the query
// holds: its "paths" events name only peers on that page.
const matrixStreamParam = "matrix"

// cellOf describes pair a→b; strings from agents pass through display.
func cellOf(a, b peerRow, p management.Pair) matrixCell {
	c := matrixCell{ID: "cell-" + a.ID + "-" + b.ID, State: string(p.State), Text: string(p.State)}
	if a.ID == b.ID {
		c.State, c.Text, c.Title = "self", "·", a.Name
		return c
	}
	view := func(who, of string, v management.PathView) string {
		s := string(v.State)
		if s == "" {
			s = "no report"
		}
		if v.Reason != "" {
			s += " (" + display(v.Reason) + ")"
		}
		if v.Latency > 0 {
			s += fmt.Sprintf(", %.2f ms", float64(v.Latency.Microseconds())/1000)
		}
		return who + " → " + of + ": " + s
	}
	switch p.State {
	case management.PairRelayed, management.PairDown:
		if p.Reason != "" {
			c.Text += " (" + display(p.Reason) + ")"
		}
	case management.PairNoPolicy:
		c.Text = "no policy"
	}
	c.Title = a.Name + " ↔ " + b.Name + ": " + c.Text
	if p.State != management.PairNoPolicy {
		c.Title += "; " + view(a.Name, b.Name, p.AtoB) + "; " + view(b.Name, a.Name, p.BtoA)
	}
	return c
}

func (h *Handler) matrix(rq *req) error {
	status, fl := http.StatusOK, []flash(nil)
	f, err := parsePeerFilter(rq.r.URL.Query(), rq.acct)
	if err != nil {
		var f1 flash
		status, f1 = errFlash(err)
		fl, f = append(fl, f1), peerFilter{Page: 1}
	}
	d, err := h.matrixData(rq, f)
	if err != nil {
		return err
	}
	h.render(rq, status, "matrix", "Connectivity", d, fl...)
	return nil
}

// matrixCells is the table fragment htmx swaps in on live events.
func (h *Handler) matrixCells(rq *req) error {
	f, err := parsePeerFilter(rq.r.URL.Query(), rq.acct)
	if err != nil {
		return err
	}
	d, err := h.matrixData(rq, f)
	if err != nil {
		return err
	}
	h.renderFragment(rq, "matrix", "cells", d)
	return nil
}
