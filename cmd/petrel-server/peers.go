package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// peerJSON is the REST shape of a peer (the fields the CLI shows).
type peerJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	IP        string     `json:"ip"`
	FQDN      string     `json:"fqdn"`
	Connected bool       `json:"connected"`
	LastSeen  *time.Time `json:"last_seen"`
	Groups    []nameJSON `json:"groups"`
}

// Peers are created by agents logging in with a setup key, so there is
// no create.
var peersDef = &resourceDef{
	use: "peers", aliases: []string{"peer"}, short: "List, rename and remove peers",
	what: "peer", plural: "peers", path: "/api/peers", nameField: "name", serverRefs: true,
	table: tableOf([]string{"NAME", "IP", "FQDN", "STATUS", "LAST SEEN", "GROUPS", "ID"}, func(p peerJSON) []string {
		status, seen := "offline", "never"
		if p.Connected {
			status = "connected"
		}
		if p.LastSeen != nil {
			seen = p.LastSeen.Local().Format(time.RFC3339)
		}
		return []string{p.Name, p.IP, p.FQDN, status, seen, joinNames(p.Groups), p.ID}
	}),
	update: func() *editor {
		var name, label string
		return &editor{
			register: func(fs *pflag.FlagSet) {
				fs.StringVar(&name, "name", "", "display name")
				fs.StringVar(&label, "dns-label", "", "DNS label: the peer's FQDN becomes LABEL.<dns domain>")
			},
			body: func(_ context.Context, _ *adminClient, fs *pflag.FlagSet, _ *object) (map[string]any, error) {
				m := members{}
				m.set(fs, "name", "name", name)
				m.set(fs, "dns-label", "dns_label", label)
				return m, nil
			},
		}
	},
}

func newPeersCmd() *cobra.Command { return newResourceCmd(peersDef) }
