package main

import (
	"context"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// groupJSON is the REST shape of a group (the fields the table shows).
type groupJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Peers      []nameJSON `json:"peers"`
	PeersCount int        `json:"peers_count"`
	Implicit   bool       `json:"implicit"`
}

var groupsDef = &resourceDef{
	use: "groups", aliases: []string{"group"}, short: "Manage groups of peers",
	what: "group", plural: "groups", path: "/api/groups", nameField: "name", serverRefs: true,
	table: tableOf([]string{"NAME", "PEERS", "MEMBERS", "ID"}, func(g groupJSON) []string {
		members := clip(joinNames(g.Peers), 60)
		if g.Implicit {
			members = "(every peer)"
		}
		return []string{g.Name, fmt.Sprint(g.PeersCount), members, g.ID}
	}),
	create: func() *editor { return groupEditor(true) },
	update: func() *editor { return groupEditor(false) },
}

func newGroupsCmd() *cobra.Command { return newResourceCmd(groupsDef) }

func groupEditor(create bool) *editor {
	var name string
	var peers, add, remove []string
	return &editor{
		required: []string{"name"},
		register: func(fs *pflag.FlagSet) {
			fs.StringVar(&name, "name", "", "group name")
			fs.StringArrayVar(&peers, "peer", nil, "member peer: id, name, fqdn or overlay IP (repeatable; replaces the members)")
			if !create {
				fs.StringArrayVar(&add, "add-peer", nil, "add a member peer (repeatable)")
				fs.StringArrayVar(&remove, "remove-peer", nil, "remove a member peer (repeatable)")
			}
		},
		body: func(ctx context.Context, c *adminClient, fs *pflag.FlagSet, cur *object) (map[string]any, error) {
			m := members{}
			m.set(fs, "name", "name", name)
			if err := m.list(fs, "peer", "peers", peers); err != nil {
				return nil, err
			}
			if len(add)+len(remove) > 0 {
				if fs.Changed("peer") {
					return nil, usageError{fmt.Errorf("--peer replaces the members; do not combine it with --add-peer or --remove-peer")}
				}
				ids, err := editList(refIDs(cur, "peers"), add, remove, func(ref string) (string, error) {
					return peerID(ctx, c, ref)
				})
				if err != nil {
					return nil, err
				}
				m["peers"] = ids
			}
			return m, nil
		},
	}
}

// peerID resolves a peer reference (id, name, fqdn or IP) through the API.
func peerID(ctx context.Context, c *adminClient, ref string) (string, error) {
	raw, err := c.send(ctx, "GET", "/api/peers/"+url.PathEscape(ref), nil, "")
	if err != nil {
		return "", fmt.Errorf("peer %q: %w", ref, err)
	}
	o, err := decodeObject(raw)
	if err != nil {
		return "", err
	}
	return o.id(), nil
}

// clip shortens s to at most n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
