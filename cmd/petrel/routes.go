package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"petrel/proto/daemonpb"
)

// routeJSON and exitNodeJSON are the `routes` and `exit_node` fields of
// `petrel status --json` and the output of `petrel routes --json`.
type routeJSON struct {
	ID        string `json:"id"`
	NetworkID string `json:"network_id"`
	Network   string `json:"network"`
	Peer      string `json:"peer"`
	PeerName  string `json:"peer_name"`
	Metric    int32  `json:"metric"`
	State     string `json:"state"`
	Chosen    bool   `json:"chosen"`
	Reason    string `json:"reason,omitempty"`
}

type exitNodeJSON struct {
	Peer       string `json:"peer"`
	PeerName   string `json:"peer_name"`
	Auto       bool   `json:"auto"`
	Active     bool   `json:"active"`
	Connected  bool   `json:"connected"`
	KillSwitch bool   `json:"kill_switch"`
	AllowLAN   bool   `json:"allow_lan"`
	Reason     string `json:"reason,omitempty"`
}

func routesJSON(rs []*daemonpb.RouteStatus) []routeJSON {
	out := make([]routeJSON, 0, len(rs))
	for _, r := range rs {
		out = append(out, routeJSON{ID: r.Id, NetworkID: r.NetworkId, Network: r.Network, Peer: r.Peer,
			PeerName: r.PeerName, Metric: r.Metric, State: r.State, Chosen: r.Chosen, Reason: r.Reason})
	}
	return out
}

func exitJSON(x *daemonpb.ExitNodeStatus) *exitNodeJSON {
	if x == nil {
		return nil
	}
	return &exitNodeJSON{Peer: x.Peer, PeerName: x.PeerName, Auto: x.Auto, Active: x.Active,
		Connected: x.Connected, KillSwitch: x.KillSwitch, AllowLAN: x.AllowLan, Reason: x.Reason}
}

// fetchStatus asks the daemon for its status.
func fetchStatus(g *globalFlags) (st *daemonpb.StatusResponse, err error) {
	err = callDaemon(g, 10*time.Second, func(ctx context.Context, cl daemonpb.DaemonClient) error {
		st, err = cl.Status(ctx, &daemonpb.StatusRequest{})
		return err
	})
	return st, err
}

func newRoutesCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "List the routes this agent knows, which are installed and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := fetchStatus(g)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), routesJSON(st.Routes))
			}
			printRoutes(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printRoutes(w io.Writer, st *daemonpb.StatusResponse) {
	if len(st.Routes) == 0 {
		fmt.Fprintln(w, "No routes in the network map.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tHA GROUP\tROUTING PEER\tMETRIC\tSTATE\tWHY")
	for _, r := range st.Routes {
		mark := " "
		if r.Chosen {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%d\t%s\t%s\n", r.Network, r.NetworkId, mark, peerLabel(r.PeerName, r.Peer),
			r.Metric, r.State, r.Reason)
	}
	tw.Flush()
	fmt.Fprintln(w, "(* = the routing peer that carries the network now)")
}

func peerLabel(name, key string) string {
	if name != "" {
		return name
	}
	if len(key) > 8 {
		return key[:8] + "…"
	}
	return key
}

func newExitNodeCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exit-node",
		Short: "List, select or turn off the exit node that carries internet traffic",
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List exit-node candidates, which one is selected, its path and latency",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := fetchStatus(g)
			if err != nil {
				return err
			}
			cands := exitCandidates(st)
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), struct {
					Selected   *exitNodeJSON   `json:"selected"`
					Candidates []exitCandidate `json:"candidates"`
				}{exitJSON(st.ExitNode), cands})
			}
			printExitNodes(cmd.OutOrStdout(), st.ExitNode, cands)
			return nil
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var allowLAN, killSwitch bool
	use := &cobra.Command{
		Use:   "use PEER",
		Short: "Send internet traffic through PEER (name, FQDN, overlay IP or public key)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &daemonpb.SetExitNodeRequest{Peer: args[0]}
			if cmd.Flags().Changed("allow-lan") {
				req.AllowLan = &allowLAN
			}
			if cmd.Flags().Changed("kill-switch") {
				req.KillSwitch = &killSwitch
			}
			return setExitNode(g, cmd.OutOrStdout(), req)
		},
	}
	use.Flags().BoolVar(&allowLAN, "allow-lan", true, "keep local subnets reachable outside the tunnel")
	use.Flags().BoolVar(&killSwitch, "kill-switch", false, "drop internet traffic while the exit node is unreachable instead of leaking it")
	off := &cobra.Command{
		Use:   "off",
		Short: "Stop using an exit node (also ignores exit nodes the network map auto-applies)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return setExitNode(g, cmd.OutOrStdout(), &daemonpb.SetExitNodeRequest{Off: true})
		},
	}
	auto := &cobra.Command{
		Use:   "auto",
		Short: "Follow the exit nodes the network map marks auto_apply (the default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return setExitNode(g, cmd.OutOrStdout(), &daemonpb.SetExitNodeRequest{Auto: true})
		},
	}
	cmd.AddCommand(list, use, off, auto)
	return cmd
}

func setExitNode(g *globalFlags, w io.Writer, req *daemonpb.SetExitNodeRequest) error {
	return callDaemon(g, 10*time.Second, func(ctx context.Context, cl daemonpb.DaemonClient) error {
		x, err := cl.SetExitNode(ctx, req)
		if err == nil {
			fmt.Fprintln(w, describeExit(x))
		}
		return err
	})
}

func describeExit(x *daemonpb.ExitNodeStatus) string {
	if x == nil || !x.Active {
		reason := "off"
		if x != nil && x.Reason != "" {
			reason = x.Reason
		}
		return "Exit node: none (" + reason + ")"
	}
	var opts []string
	if x.Auto {
		opts = append(opts, "auto")
	}
	if x.KillSwitch {
		opts = append(opts, "kill switch")
	}
	if !x.AllowLan {
		opts = append(opts, "LAN through the tunnel")
	}
	s := "Exit node: " + peerLabel(x.PeerName, x.Peer)
	if !x.Connected {
		s += " (not connected)"
	}
	if len(opts) > 0 {
		s += " [" + strings.Join(opts, ", ") + "]"
	}
	return s
}

type exitCandidate struct {
	Peer      string  `json:"peer"`
	Name      string  `json:"name"`
	Selected  bool    `json:"selected"`
	Status    string  `json:"status"`
	Path      string  `json:"path"`
	LatencyMs float64 `json:"latency_ms"`
}

func exitCandidates(st *daemonpb.StatusResponse) []exitCandidate {
	peers := map[string]*daemonpb.PeerStatus{}
	for _, p := range st.Peers {
		peers[p.PublicKey] = p
	}
	out := []exitCandidate{}
	seen := map[string]bool{}
	for _, r := range st.Routes {
		if !strings.HasSuffix(r.Network, "/0") || seen[r.Peer] || r.State == "served" {
			continue
		}
		seen[r.Peer] = true
		c := exitCandidate{Peer: r.Peer, Name: r.PeerName, Selected: r.Chosen, Status: "offline", Path: "none"}
		if p := peers[r.Peer]; p != nil {
			c.Status, c.Path, c.LatencyMs = p.Status, p.Path, p.LatencyMs
		}
		out = append(out, c)
	}
	return out
}

func printExitNodes(w io.Writer, x *daemonpb.ExitNodeStatus, cands []exitCandidate) {
	fmt.Fprintln(w, describeExit(x))
	if len(cands) == 0 {
		fmt.Fprintln(w, "No peer offers an exit node.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPEER\tSTATUS\tPATH\tLATENCY")
	for _, c := range cands {
		mark := " "
		if c.Selected {
			mark = "*"
		}
		lat := "-"
		if c.LatencyMs > 0 {
			lat = fmt.Sprintf("%.1f ms", c.LatencyMs)
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\n", mark, peerLabel(c.Name, c.Peer), c.Status, c.Path, lat)
	}
	tw.Flush()
}
