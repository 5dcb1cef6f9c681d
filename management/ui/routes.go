package ui

import (
	"cmp"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"petrel/management/model"
)

// routesPerPage is the routes page's page size.
const routesPerPage = 50

// maxRoutersShown bounds the routing peers listed in one row (a route
// served by a large group); the counts cover all of them.
const maxRoutersShown = 12

// routerRow is one routing peer of a route and what the Sync hub knows of
// it: whether its stream is open. Which routing peer carries the network
// is chosen by each agent; Active counts the agents that report it as
// theirs (routehealth.go).
type routerRow struct {
	ID, Name    string
	Connected   bool
	Active      int
	ActiveLabel string // "active for N clients"; "" when none
}

// routeRow is one route as the routes page shows it; strings from users
// and agents are already passed through display.
type routeRow struct {
	ID, Network, NetworkID, Description string
	Exit                                bool
	PeerGroups                          []string // names, when served by groups
	Routers                             []routerRow
	More                                int // routing peers not listed
	Up, Total                           int // connected / all routing peers
	Groups                              []string
	Metric                              int
	Masquerade, Enabled, AutoApply      bool
	Alternatives                        int // other routes of its HA group (same network ID and network)
	History                             string
	Clients                             int           // agents reporting a routing peer for its network (routehealth.go)
	Failovers                           []failoverRow // its network's last changes of routing peer, latest first
}

// routeFilter is the routes page's query.
type routeFilter struct {
	Q      string
	Kind   string // "", "network" or "exit"
	State  string // "", "enabled" or "disabled"
	Health string // "", "up" (a routing peer is connected) or "down" (none is)
	Page   int
}

func parseRouteFilter(q url.Values) (routeFilter, error) {
	f := routeFilter{Q: strings.TrimSpace(q.Get("q")), Kind: q.Get("kind"), State: q.Get("state"), Health: q.Get("health"), Page: 1}
	if len(f.Q) > 200 {
		return f, badInput("search text too long (at most 200 bytes)")
	}
	switch f.Kind {
	case "", "network", "exit":
	default:
		return f, badInput("kind %q: want network or exit", f.Kind)
	}
	switch f.State {
	case "", "enabled", "disabled":
	default:
		return f, badInput("state %q: want enabled or disabled", f.State)
	}
	switch f.Health {
	case "", "up", "down":
	default:
		return f, badInput("health %q: want up or down", f.Health)
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

func (f routeFilter) values(withPage bool) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"q": f.Q, "kind": f.Kind, "state": f.State, "health": f.Health} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if withPage && f.Page > 1 {
		v.Set("page", strconv.Itoa(f.Page))
	}
	return v
}

func (f routeFilter) filtered() bool {
	return f.Q != "" || f.Kind != "" || f.State != "" || f.Health != ""
}

// routers lists a route's routing peers: its peer, or the members of its
// peer groups.
func routers(a *model.Account, rt *model.Route) []*model.Peer {
	var ids []string
	if rt.Peer != "" {
		ids = append(ids, rt.Peer)
	}
	for _, g := range rt.PeerGroups {
		if grp := a.Groups[g]; grp != nil {
			ids = append(ids, grp.PeerIDs...)
		}
	}
	var out []*model.Peer
	seen := map[string]bool{}
	for _, id := range ids {
		if p := a.Peers[id]; p != nil && !seen[id] {
			seen[id] = true
			out = append(out, p)
		}
	}
	return out
}

func (h *Handler) routeRow(rq *req, rt *model.Route, alternatives int) (routeRow, []string) {
	r := routeRow{ID: rt.ID, Network: rt.Network.String(), NetworkID: display(rt.NetworkID), Description: display(rt.Description),
		Exit: rt.IsExitNode(), Groups: groupNames(rq.acct, rt.Groups), Metric: rt.Metric, Masquerade: rt.Masquerade,
		Enabled: rt.Enabled, AutoApply: rt.AutoApply, Alternatives: alternatives,
		History: "/ui/events?" + url.Values{"kind": {string(model.KindRoute)}, "target": {rt.ID}}.Encode()}
	if len(rt.PeerGroups) > 0 {
		r.PeerGroups = groupNames(rq.acct, rt.PeerGroups)
	}
	search := []string{r.Network, rt.NetworkID, rt.Description}
	search = append(search, r.Groups...)
	search = append(search, r.PeerGroups...)
	var rows []routerRow
	for _, p := range routers(rq.acct, rt) {
		connected, _ := h.svc.PeerStatus(rq.acct.ID, p.ID)
		rows = append(rows, routerRow{ID: p.ID, Name: display(p.Name), Connected: connected})
		search = append(search, p.Name)
		if p.IP.IsValid() {
			search = append(search, p.IP.String())
		}
	}
	// Connected first, then by name: the ones that can carry traffic now.
	slices.SortFunc(rows, func(a, b routerRow) int {
		if a.Connected != b.Connected {
			if a.Connected {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.ID, b.ID))
	})
	r.Total = len(rows)
	for _, x := range rows {
		if x.Connected {
			r.Up++
		}
	}
	r.Routers = rows[:min(len(rows), maxRoutersShown)]
	r.More = len(rows) - len(r.Routers)
	return r, search
}

// matchingRoutes returns the routes that pass f, as rows, HA groups
// together and by metric within them.
func (h *Handler) matchingRoutes(rq *req, f routeFilter) []routeRow {
	ha := map[string]int{}
	key := func(rt *model.Route) string { return rt.NetworkID + "\x00" + rt.Network.String() }
	for _, rt := range rq.acct.Routes {
		ha[key(rt)]++
	}
	q := strings.ToLower(f.Q)
	var rows []routeRow
	for _, rt := range rq.acct.Routes {
		if f.Kind == "exit" && !rt.IsExitNode() || f.Kind == "network" && rt.IsExitNode() ||
			f.State == "enabled" && !rt.Enabled || f.State == "disabled" && rt.Enabled {
			continue
		}
		r, search := h.routeRow(rq, rt, ha[key(rt)]-1)
		if f.Health == "up" && r.Up == 0 || f.Health == "down" && r.Up > 0 {
			continue
		}
		if q != "" && rt.ID != f.Q && !slices.ContainsFunc(search, func(s string) bool { return strings.Contains(strings.ToLower(s), q) }) {
			continue
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b routeRow) int {
		return cmp.Or(cmp.Compare(a.NetworkID, b.NetworkID), cmp.Compare(a.Network, b.Network), cmp.Compare(a.Metric, b.Metric),
			cmp.Compare(a.ID, b.ID))
	})
	return rows
}

// routeForm is the create/edit form as submitted (or as loaded from the
// route being edited), so a refused form keeps what was typed.
type routeForm struct {
	ID                             string // set when editing
	Network, NetworkID             string
	Description                    string
	Metric                         string
	Masquerade, Enabled, AutoApply bool
	Peers                          []option // the routing peer (single)
	PeerGroups                     []option
	Groups                         []option // distribution groups
}

func newRouteForm(a *model.Account, rt *model.Route) routeForm {
	f := routeForm{Enabled: true, Metric: "0"}
	var peer string
	var peerGroups, groups []string
	if rt != nil {
		f = routeForm{ID: rt.ID, Network: rt.Network.String(), NetworkID: display(rt.NetworkID), Description: display(rt.Description),
			Metric: strconv.Itoa(rt.Metric), Masquerade: rt.Masquerade, Enabled: rt.Enabled, AutoApply: rt.AutoApply}
		peer, peerGroups, groups = rt.Peer, rt.PeerGroups, rt.Groups
	}
	f.setOptions(a, peer, peerGroups, groups)
	return f
}

func (f *routeForm) setOptions(a *model.Account, peer string, peerGroups, groups []string) {
	f.Peers = nil
	for _, p := range a.Peers {
		label := display(p.Name)
		if p.IP.IsValid() {
			label += " (" + p.IP.String() + ")"
		}
		f.Peers = append(f.Peers, option{Value: p.ID, Label: label, Selected: p.ID == peer})
	}
	slices.SortFunc(f.Peers, func(a, b option) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Label), strings.ToLower(b.Label)), cmp.Compare(a.Value, b.Value))
	})
	f.PeerGroups = groupOptions(a, peerGroups...)
	f.Groups = groupOptions(a, groups...)
}

type routesData struct {
	Filter      routeFilter
	Rows        []routeRow
	Total       int
	Page, Pages int
	PrevURL     string
	NextURL     string
	Filtered    bool
	Form        routeForm
	Editing     bool
}

func (h *Handler) routesData(rq *req, f routeFilter, form routeForm) routesData {
	rows := h.matchingRoutes(rq, f)
	pages := max(1, (len(rows)+routesPerPage-1)/routesPerPage)
	f.Page = min(f.Page, pages)
	d := routesData{Filter: f, Total: len(rows), Page: f.Page, Pages: pages, Filtered: f.filtered(), Form: form}
	start := (f.Page - 1) * routesPerPage
	d.Rows = rows[start:min(len(rows), start+routesPerPage)]
	h.addRouteHealth(rq, d.Rows)
	link := func(page int) string {
		g := f
		g.Page = page
		return "/ui/routes?" + g.values(true).Encode()
	}
	if f.Page > 1 {
		d.PrevURL = link(f.Page - 1)
	}
	if f.Page < pages {
		d.NextURL = link(f.Page + 1)
	}
	return d
}

func (h *Handler) routesPage(rq *req) error {
	f, err := parseRouteFilter(rq.r.URL.Query())
	if err != nil {
		return h.routesError(rq, err, newRouteForm(rq.acct, nil))
	}
	h.render(rq, http.StatusOK, "routes", "Routes", h.routesData(rq, f, newRouteForm(rq.acct, nil)))
	return nil
}

// routesError shows the routes page (or the edit form) with err, keeping
// the form as it was submitted.
func (h *Handler) routesError(rq *req, err error, form routeForm) error {
	status, fl := errFlash(err)
	if form.ID != "" {
		h.render(rq, status, "routes", "Edit route", routesData{Form: form, Editing: true}, fl)
		return nil
	}
	h.render(rq, status, "routes", "Routes", h.routesData(rq, routeFilter{Page: 1}, form), fl)
	return nil
}

// editRoute shows the form of one route.
func (h *Handler) editRoute(rq *req) error {
	rt := rq.acct.Routes[rq.r.PathValue("id")]
	if rt == nil {
		return notFound("route %q not found", rq.r.PathValue("id"))
	}
	h.render(rq, http.StatusOK, "routes", "Edit route", routesData{Form: newRouteForm(rq.acct, rt), Editing: true})
	return nil
}

// routeFromForm turns the posted form into a route for the service, which
// checks it (network ranges, exactly one of peer and peer groups, known
// peers and groups, metric range). Only what must be parsed into a type
// is checked here.
func routeFromForm(rq *req, id string) (*model.Route, routeForm, error) {
	form := routeForm{ID: id}
	rq.r.Body = http.MaxBytesReader(rq.w, rq.r.Body, maxFormBytes)
	if err := rq.r.ParseForm(); err != nil {
		form.setOptions(rq.acct, "", nil, nil)
		return nil, form, badInput("unreadable form: %v", err)
	}
	pf := rq.r.PostForm
	network, metric := strings.TrimSpace(pf.Get("network")), strings.TrimSpace(pf.Get("metric"))
	rt := &model.Route{ID: id, Description: pf.Get("description"), NetworkID: strings.TrimSpace(pf.Get("network_id")),
		Peer: pf.Get("peer"), PeerGroups: pf["peer_groups"], Groups: pf["groups"], Masquerade: pf.Get("masquerade") == "on",
		Enabled: pf.Get("enabled") == "on", AutoApply: pf.Get("auto_apply") == "on"}
	// The form shown again if refused: what was typed, legible.
	form.Network, form.NetworkID, form.Description, form.Metric = display(network), display(rt.NetworkID), display(rt.Description), display(metric)
	form.Masquerade, form.Enabled, form.AutoApply = rt.Masquerade, rt.Enabled, rt.AutoApply
	form.setOptions(rq.acct, rt.Peer, rt.PeerGroups, rt.Groups)
	if network == "" {
		return nil, form, badInput("network is required: a prefix such as 10.20.0.0/24, or 0.0.0.0/0 for an exit node")
	}
	pfx, err := netip.ParsePrefix(network)
	if err != nil {
		return nil, form, badInput("network %q: want a prefix such as 10.20.0.0/24, or 0.0.0.0/0 for an exit node", display(network))
	}
	rt.Network = pfx
	if metric != "" {
		if rt.Metric, err = strconv.Atoi(metric); err != nil {
			return nil, form, badInput("metric %q: want a whole number", display(metric))
		}
	}
	return rt, form, nil
}

func (h *Handler) putRoute(rq *req, id string) error {
	rt, form, err := routeFromForm(rq, id)
	if err == nil {
		var obj model.Object
		if obj, err = h.svc.Put(rq.ctx(), rq.acct.ID, rt); err == nil {
			verb := "Created"
			if id != "" {
				verb = "Saved"
			}
			stored := obj.(*model.Route)
			what := "route " + stored.Network.String()
			if stored.IsExitNode() {
				what = "exit node " + stored.Network.String()
			}
			return h.done(rq, "/ui/routes", verb+" "+what+".")
		}
	}
	return h.routesError(rq, err, form)
}

func (h *Handler) createRoute(rq *req) error { return h.putRoute(rq, "") }

func (h *Handler) updateRoute(rq *req) error {
	id := rq.r.PathValue("id")
	if rq.acct.Routes[id] == nil {
		return h.routesError(rq, notFound("route %q not found", id), newRouteForm(rq.acct, nil))
	}
	return h.putRoute(rq, id)
}

// deleteRoute deletes a route after a confirmation page.
func (h *Handler) deleteRoute(rq *req) error {
	fail := func(err error) error { return h.routesError(rq, err, newRouteForm(rq.acct, nil)) }
	id := rq.r.PathValue("id")
	rt := rq.acct.Routes[id]
	if rt == nil {
		return fail(notFound("route %q not found", id))
	}
	what := "route " + rt.Network.String()
	if rt.IsExitNode() {
		what = "exit node " + rt.Network.String()
	}
	items := []string{what}
	if row, _ := h.routeRow(rq, rt, 0); row.Description != "" {
		items = append(items, "description: "+row.Description)
	}
	return h.change(rq, oneChange{back: "/ui/routes", fail: fail, title: "Delete " + what,
		confirm: &confirmDeleteData{Title: "Delete " + what + "?", Items: items, Action: "/ui/routes/" + rt.ID + "/delete", Cancel: "/ui/routes",
			Note: "Peers stop receiving this route at once; traffic to the network then takes another route or none."},
		apply: func() (string, error) {
			return "Deleted " + what + ".", h.svc.Delete(rq.ctx(), rq.acct.ID, model.KindRoute, rt.ID)
		}})
}
