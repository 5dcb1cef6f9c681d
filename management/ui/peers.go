package ui

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"petrel/management"
	"petrel/management/model"
)

// peersPerPage is the peers page's page size.
const peersPerPage = 50

// maxBulk bounds the peers one bulk action may name.
const maxBulk = 10000

// peerRow is one peer as the dashboard shows it; strings from agents are
// already passed through display.
type peerRow struct {
	ID, Name, DNSLabel, IP, FQDN, User string
	Hostname, OS, Kernel, Version      string
	Groups                             []string
	Connected, Disabled, Ephemeral     bool
	NetstackMode                       bool
	LastSeen, Created, LastLogin       time.Time
}

// visiblePeers returns the peers the caller may see: all for admins, their
// own (registered by signing in) for users.
func visiblePeers(rq *req) map[string]*model.Peer {
	if rq.p.IsAdmin() {
		return rq.acct.Peers
	}
	own := map[string]*model.Peer{}
	for id, p := range rq.acct.Peers {
		if p.UserID != "" && p.UserID == rq.p.UserID {
			own[id] = p
		}
	}
	return own
}

func domain(a *model.Account) string {
	if a.Settings.DNSDomain == "" {
		return model.DefaultDNSDomain
	}
	return a.Settings.DNSDomain
}

func fqdn(a *model.Account, p *model.Peer) string {
	if p.DNSLabel == "" {
		return ""
	}
	return p.DNSLabel + "." + domain(a)
}

// peerGroupNames maps peer IDs to the sorted names of their groups.
func peerGroupNames(a *model.Account) map[string][]string {
	idx := map[string][]string{}
	for _, g := range a.Groups {
		for _, id := range g.PeerIDs {
			idx[id] = append(idx[id], display(g.Name))
		}
	}
	for _, v := range idx {
		slices.Sort(v)
	}
	return idx
}

func (h *Handler) peerRow(rq *req, p *model.Peer, groups []string) peerRow {
	connected, lastSeen := h.svc.PeerStatus(rq.acct.ID, p.ID)
	if lastSeen.Before(p.LastSeen) {
		lastSeen = p.LastSeen
	}
	ip := ""
	if p.IP.IsValid() {
		ip = p.IP.String()
	}
	user := ""
	if u := rq.acct.Users[p.UserID]; u != nil {
		user = display(u.Email)
	}
	return peerRow{ID: p.ID, Name: display(p.Name), DNSLabel: display(p.DNSLabel), IP: ip, FQDN: display(fqdn(rq.acct, p)),
		User: user, Hostname: display(p.Meta.Hostname), OS: display(p.Meta.OS), Kernel: display(p.Meta.Kernel),
		Version: display(p.Meta.Version), Groups: groups, Connected: connected, Disabled: p.Disabled,
		Ephemeral: p.Ephemeral, NetstackMode: p.Meta.NetstackMode, LastSeen: lastSeen, Created: p.CreatedAt,
		LastLogin: p.LastLogin}
}

// peerFilter is the peers page's query: search text, status, group, page.
type peerFilter struct {
	Q      string
	Status string // "", "connected" or "offline"
	Group  string // group ID
	Page   int    // from 1
}

// parsePeerFilter reads the filter from q; unknown values are errors.
func parsePeerFilter(q url.Values, a *model.Account) (peerFilter, error) {
	f := peerFilter{Q: strings.TrimSpace(q.Get("q")), Status: q.Get("status"), Group: q.Get("group"), Page: 1}
	if len(f.Q) > 200 {
		return f, badInput("search text too long (at most 200 bytes)")
	}
	switch f.Status {
	case "", "connected", "offline":
	default:
		return f, badInput("status %q: want connected or offline", f.Status)
	}
	if f.Group != "" && a.Groups[f.Group] == nil {
		return f, badInput("group %q not found", f.Group)
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, badInput("page %q: want a number from 1", v)
		}
		f.Page = n
	}
	return f, nil
}

// values encodes the filter (without the page unless withPage).
func (f peerFilter) values(withPage bool) url.Values {
	v := url.Values{}
	if f.Q != "" {
		v.Set("q", f.Q)
	}
	if f.Status != "" {
		v.Set("status", f.Status)
	}
	if f.Group != "" {
		v.Set("group", f.Group)
	}
	if withPage && f.Page > 1 {
		v.Set("page", strconv.Itoa(f.Page))
	}
	return v
}

// matching returns the visible peers that pass f, sorted by name, as rows.
func (h *Handler) matching(rq *req, f peerFilter) []peerRow {
	groups := peerGroupNames(rq.acct)
	var inGroup map[string]bool
	if g := rq.acct.Groups[f.Group]; g != nil {
		inGroup = map[string]bool{}
		for _, id := range g.PeerIDs {
			inGroup[id] = true
		}
	}
	q := strings.ToLower(f.Q)
	var rows []peerRow
	for _, p := range visiblePeers(rq) {
		if inGroup != nil && !inGroup[p.ID] {
			continue
		}
		r := h.peerRow(rq, p, groups[p.ID])
		if f.Status == "connected" && !r.Connected || f.Status == "offline" && r.Connected {
			continue
		}
		if q != "" && !matchesSearch(q, p, r) {
			continue
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b peerRow) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.ID, b.ID))
	})
	return rows
}

// matchesSearch: q (lower case) is part of the peer's name, IP, FQDN,
// user, hostname, or is its ID.
func matchesSearch(q string, p *model.Peer, r peerRow) bool {
	for _, s := range []string{p.Name, r.IP, r.FQDN, r.User, p.Meta.Hostname} {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return p.ID == q
}

type option struct {
	Value, Label string
	Selected     bool
}

type peersData struct {
	Filter      peerFilter
	Groups      []option
	Rows        []peerRow
	Total       int
	Page, Pages int
	RowsURL     string // the rows fragment of this page, refetched on live events
	PrevURL     string
	NextURL     string
	FilterVals  url.Values // hidden fields of "delete all matching"
	Filtered    bool
	Admin       bool
	// FilterAction is the page the filter form submits to.
	FilterAction string
}

func (h *Handler) peersData(rq *req, f peerFilter) peersData {
	rows := h.matching(rq, f)
	pages := max(1, (len(rows)+peersPerPage-1)/peersPerPage)
	f.Page = min(f.Page, pages)
	d := peersData{FilterAction: "/ui/peers", Filter: f, Total: len(rows), Page: f.Page, Pages: pages, FilterVals: f.values(false),
		Filtered: f.Q != "" || f.Status != "" || f.Group != "", Admin: rq.p.IsAdmin()}
	start := (f.Page - 1) * peersPerPage
	d.Rows = rows[start:min(len(rows), start+peersPerPage)]
	d.RowsURL = "/ui/peers/rows?" + f.values(true).Encode()
	link := func(page int) string {
		g := f
		g.Page = page
		return "/ui/peers?" + g.values(true).Encode()
	}
	if f.Page > 1 {
		d.PrevURL = link(f.Page - 1)
	}
	if f.Page < pages {
		d.NextURL = link(f.Page + 1)
	}
	if rq.p.IsAdmin() {
		d.Groups = groupOptions(rq.acct, f.Group)
	}
	return d
}

// groupOptions lists the account's groups by name for a <select>.
func groupOptions(a *model.Account, selected ...string) []option {
	var out []option
	for _, g := range a.Groups {
		out = append(out, option{Value: g.ID, Label: display(g.Name), Selected: slices.Contains(selected, g.ID)})
	}
	slices.SortFunc(out, func(a, b option) int { return cmp.Or(cmp.Compare(a.Label, b.Label), cmp.Compare(a.Value, b.Value)) })
	return out
}

func (h *Handler) peers(rq *req) error {
	f, err := parsePeerFilter(rq.r.URL.Query(), rq.acct)
	if err != nil {
		status, fl := errFlash(err)
		h.render(rq, status, "peers", "Peers", h.peersData(rq, peerFilter{Page: 1}), fl)
		return nil
	}
	h.render(rq, http.StatusOK, "peers", "Peers", h.peersData(rq, f))
	return nil
}

// peerRows is the rows fragment htmx swaps into the peers table when a
// live event arrives.
func (h *Handler) peerRows(rq *req) error {
	f, err := parsePeerFilter(rq.r.URL.Query(), rq.acct)
	if err != nil {
		return err
	}
	h.renderFragment(rq, "peers", "rows", h.peersData(rq, f))
	return nil
}

type peerData struct {
	Peer        peerRow
	Admin       bool
	Connections []connRow // peerpaths.go
}

func (h *Handler) peer(rq *req) error {
	p := visiblePeers(rq)[rq.r.PathValue("id")]
	if p == nil {
		return management.Errorf(management.KindNotFound, "peer %q not found", rq.r.PathValue("id"))
	}
	row := h.peerRow(rq, p, peerGroupNames(rq.acct)[p.ID])
	conns, err := h.connections(rq, p.ID)
	if err != nil {
		return err
	}
	h.render(rq, http.StatusOK, "peer", "Peer "+row.Name, peerData{Peer: row, Admin: rq.p.IsAdmin(), Connections: conns})
	return nil
}

type confirmData struct {
	Rows []peerRow // the first ones, for display
	IDs  []string
	More int
}

// deletePeers deletes the selected peers, or every peer matching the
// filter, after a confirmation page that names them.
func (h *Handler) deletePeers(rq *req) error {
	rq.r.Body = http.MaxBytesReader(rq.w, rq.r.Body, 4*maxFormBytes)
	if err := rq.r.ParseForm(); err != nil {
		return badInput("unreadable form: %v", err)
	}
	form := rq.r.PostForm
	visible := visiblePeers(rq)
	var ids []string
	switch form.Get("scope") {
	case "selected":
		for _, id := range form["id"] {
			if visible[id] == nil {
				return h.peersError(rq, management.Errorf(management.KindNotFound, "peer %q not found", id))
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	case "matching":
		f, err := parsePeerFilter(form, rq.acct)
		if err != nil {
			return h.peersError(rq, err)
		}
		for _, r := range h.matching(rq, f) {
			ids = append(ids, r.ID)
		}
	default:
		return h.peersError(rq, badInput("scope %q: want selected or matching", form.Get("scope")))
	}
	if len(ids) == 0 {
		return h.peersError(rq, badInput("no peers selected: tick some rows, or filter and delete all matching"))
	}
	if len(ids) > maxBulk {
		return h.peersError(rq, badInput("%d peers selected; at most %d per bulk action", len(ids), maxBulk))
	}
	if form.Get("confirm") != "yes" {
		groups := peerGroupNames(rq.acct)
		d := confirmData{IDs: ids}
		for _, id := range ids[:min(len(ids), 100)] {
			d.Rows = append(d.Rows, h.peerRow(rq, visible[id], groups[id]))
		}
		d.More = len(ids) - len(d.Rows)
		h.render(rq, http.StatusOK, "confirm", "Delete peers", d)
		return nil
	}
	deleted := 0
	var failed []string
	for _, id := range ids {
		if err := h.svc.Delete(rq.ctx(), rq.acct.ID, model.KindPeer, id); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %s", display(visible[id].Name), errText(err)))
			continue
		}
		deleted++
	}
	if len(failed) > 0 {
		h.sessions.addFlash(rq.sid, flash{Error: true, Msg: fmt.Sprintf("%d of %d peers not deleted: %s",
			len(failed), len(ids), strings.Join(failed[:min(len(failed), 5)], "; "))})
	}
	return h.done(rq, "/ui/peers", fmt.Sprintf("Deleted %d peer(s).", deleted))
}

// peersError shows the peers page with err.
func (h *Handler) peersError(rq *req, err error) error {
	status, fl := errFlash(err)
	h.render(rq, status, "peers", "Peers", h.peersData(rq, peerFilter{Page: 1}), fl)
	return nil
}
