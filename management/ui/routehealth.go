package ui

import (
	"net/netip"
	"strconv"
)

// Route health from the agents' route reports: for each routing peer of a
// route, how many agents send the route's network through it now, and the
// network's last changes of routing peer (management.Service.RouteHealth;
// docs/dashboard.md "Route health").

// peerLink names a peer of a failover; ID is empty for a deleted peer.
type peerLink struct{ ID, Name string }

// failoverRow is one change of routing peer an agent reported.
type failoverRow struct {
	At               string
	Client, From, To peerLink
	Reason           string
}

// addRouteHealth fills rows' active counts and failover histories, with
// one RouteHealth call for the page.
func (h *Handler) addRouteHealth(rq *req, rows []routeRow) {
	if len(rows) == 0 {
		return
	}
	health, err := h.svc.RouteHealth(rq.acct.ID)
	if err != nil {
		h.log.Warn("route health", "account", rq.acct.ID, "err", err)
		return
	}
	link := func(id string) peerLink {
		if p := rq.acct.Peers[id]; p != nil {
			return peerLink{ID: id, Name: display(p.Name)}
		}
		return peerLink{Name: "a deleted peer"}
	}
	for i := range rows {
		r := &rows[i]
		n, err := netip.ParsePrefix(r.Network)
		if err != nil {
			continue
		}
		u := health[n.Masked().String()]
		r.Clients = u.Clients
		for j := range r.Routers {
			x := &r.Routers[j]
			x.Active = u.Active[x.ID]
			x.ActiveLabel = activeLabel(x.Active)
		}
		for _, f := range u.History {
			r.Failovers = append(r.Failovers, failoverRow{At: fmtTime(f.At), Client: link(f.Client),
				From: link(f.From), To: link(f.To), Reason: display(f.Reason)})
		}
	}
}

func activeLabel(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return "active for 1 client"
	}
	return "active for " + strconv.Itoa(n) + " clients"
}
