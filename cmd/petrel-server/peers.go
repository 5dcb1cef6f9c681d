package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
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
	Groups    []struct {
		Name string `json:"name"`
	} `json:"groups"`
}

func newPeersCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "peers", Short: "List and remove peers"}
	cmd.AddCommand(newPeersListCmd(), newPeersDeleteCmd())
	return cmd
}

func newPeersListCmd() *cobra.Command {
	var f clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --server URL --token-file FILE [--json]",
		Short: "List peers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), "GET", "/api/peers", nil)
			if err != nil {
				return fmt.Errorf("list peers: %w", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var peers []peerJSON
			if err := json.Unmarshal(raw, &peers); err != nil {
				return fmt.Errorf("list peers: decode response: %w", err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tIP\tFQDN\tSTATUS\tLAST SEEN\tGROUPS\tID")
			for _, p := range peers {
				status, seen := "offline", "never"
				if p.Connected {
					status = "connected"
				}
				if p.LastSeen != nil {
					seen = p.LastSeen.Local().Format(time.RFC3339)
				}
				var groups []string
				for _, g := range p.Groups {
					groups = append(groups, g.Name)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.IP, p.FQDN, status, seen, strings.Join(groups, ","), p.ID)
			}
			return tw.Flush()
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newPeersDeleteCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "delete PEER --server URL --token-file FILE",
		Short: "Delete a peer (by id, name, fqdn or overlay IP)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if _, err := c.do(cmd.Context(), "DELETE", "/api/peers/"+url.PathEscape(args[0]), nil); err != nil {
				return fmt.Errorf("delete peer: %w", err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "deleted peer %s\n", args[0])
			return err
		},
	}
	f.register(cmd)
	return cmd
}
