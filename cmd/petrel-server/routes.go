package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// routeJSON is the REST shape of a route (the fields the table shows).
type routeJSON struct {
	ID          string     `json:"id"`
	Description string     `json:"description"`
	NetworkID   string     `json:"network_id"`
	Network     string     `json:"network"`
	Peer        *nameJSON  `json:"peer"`
	PeerGroups  []nameJSON `json:"peer_groups"`
	Groups      []nameJSON `json:"groups"`
	Metric      int        `json:"metric"`
	Masquerade  bool       `json:"masquerade"`
	Enabled     bool       `json:"enabled"`
}

// via names who routes: the peer, or "group:" and the peer groups.
func (r routeJSON) via() string {
	if r.Peer != nil {
		return r.Peer.Name
	}
	return "groups:" + joinNames(r.PeerGroups)
}

var routesDef = &resourceDef{
	use: "routes", aliases: []string{"route"}, short: "Manage routes to networks behind routing peers, and exit nodes",
	what: "route", plural: "routes", path: "/api/routes", nameField: "network",
	table: tableOf([]string{"NETWORK", "NETWORK ID", "VIA", "GROUPS", "METRIC", "MASQUERADE", "ENABLED", "ID"}, func(r routeJSON) []string {
		return []string{r.Network, r.NetworkID, r.via(), joinNames(r.Groups), fmt.Sprint(r.Metric), yesNo(r.Masquerade), yesNo(r.Enabled), r.ID}
	}),
	create: func() *editor { return routeEditor() },
	update: func() *editor { return routeEditor() },
}

func newRoutesCmd() *cobra.Command { return newResourceCmd(routesDef) }

func routeEditor() *editor {
	var network, networkID, description, peer string
	var peerGroups, groups []string
	var metric int
	var masquerade, enabled, autoApply bool
	return &editor{
		required: []string{"network", "group"},
		register: func(fs *pflag.FlagSet) {
			fs.StringVar(&network, "network", "", "routed network, e.g. 10.20.0.0/24 (0.0.0.0/0 or ::/0: an exit node)")
			fs.StringVar(&networkID, "network-id", "", "HA group name (default: the network)")
			fs.StringVar(&description, "description", "", "description")
			fs.StringVar(&peer, "peer", "", "routing peer: id, name, fqdn or overlay IP (or --peer-group)")
			fs.StringArrayVar(&peerGroups, "peer-group", nil, "group of routing peers (repeatable; or --peer)")
			fs.StringArrayVar(&groups, "group", nil, "group of peers that get the route (repeatable)")
			fs.IntVar(&metric, "metric", 0, "0-9999, lower is preferred")
			fs.BoolVar(&masquerade, "masquerade", false, "the routing peer NATs traffic into the network")
			fs.BoolVar(&enabled, "enabled", true, "serve the route")
			fs.BoolVar(&autoApply, "auto-apply", false, "agents use an exit node without choosing it")
		},
		body: func(_ context.Context, _ *adminClient, fs *pflag.FlagSet, cur *object) (map[string]any, error) {
			if fs.Changed("peer") == fs.Changed("peer-group") && (cur == nil || fs.Changed("peer")) {
				return nil, usageError{fmt.Errorf("give either --peer or --peer-group")}
			}
			m := members{}
			m.set(fs, "network", "network", network)
			m.set(fs, "network-id", "network_id", networkID)
			m.set(fs, "description", "description", description)
			m.set(fs, "metric", "metric", metric)
			m.set(fs, "masquerade", "masquerade", masquerade)
			m.set(fs, "enabled", "enabled", enabled)
			m.set(fs, "auto-apply", "auto_apply", autoApply)
			if err := m.list(fs, "group", "groups", groups); err != nil {
				return nil, err
			}
			// A route has one of peer and peer_groups: on update, setting one
			// removes the other (null in a merge patch).
			if fs.Changed("peer") {
				m["peer"] = peer
				if cur != nil {
					m["peer_groups"] = nil
				}
			}
			if fs.Changed("peer-group") {
				if err := m.list(fs, "peer-group", "peer_groups", peerGroups); err != nil {
					return nil, err
				}
				if cur != nil {
					m["peer"] = nil
				}
			}
			return m, nil
		},
	}
}
