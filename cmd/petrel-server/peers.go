package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
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

func newPeersCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "peers", Short: "List and remove peers"}
	cmd.AddCommand(newPeersListCmd(), newPeersDeleteCmd())
	return cmd
}

func newPeersListCmd() *cobra.Command {
	return newListCmd("List peers", "/api/peers", "peers",
		"NAME\tIP\tFQDN\tSTATUS\tLAST SEEN\tGROUPS\tID",
		func(p peerJSON) string {
			status, seen := "offline", "never"
			if p.Connected {
				status = "connected"
			}
			if p.LastSeen != nil {
				seen = p.LastSeen.Local().Format(time.RFC3339)
			}
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", p.Name, p.IP, p.FQDN, status, seen, joinNames(p.Groups), p.ID)
		})
}

func newPeersDeleteCmd() *cobra.Command {
	return newObjectCmd("delete PEER --server URL --token-file FILE", "Delete a peer (by id, name, fqdn or overlay IP)",
		"DELETE", "/api/peers", nil, "delete peer", "deleted peer")
}
