package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"petrel/proto/daemonpb"
)

func newSetCmd(g *globalFlags) *cobra.Command {
	var (
		hostname, exitNode string
		acceptDNS          bool
	)
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Change settings of the running agent (saved for the next up)",
		Long: "Change settings of the running agent without restarting the daemon; each is saved\n" +
			"in the profile, so the next up uses it too.\n" +
			"  --hostname NAME        sent to the management server at once (a re-login)\n" +
			"  --exit-node PEER|none|auto  as petrel exit-node use/off/auto\n" +
			"  --accept-dns=false     stop pointing the host's resolver at the agent (the\n" +
			"                         tunnel reconnects to apply it); true turns it back on\n\n" +
			"Exit status: 0 applied, 1 failed (what was applied before the failure is said), 2 usage error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &daemonpb.SetRequest{}
			fl := cmd.Flags()
			if fl.Changed("hostname") {
				req.Hostname = &hostname
			}
			if fl.Changed("exit-node") {
				req.ExitNode = &exitNode
			}
			if fl.Changed("accept-dns") {
				req.AcceptDns = &acceptDNS
			}
			if req.Hostname == nil && req.ExitNode == nil && req.AcceptDns == nil {
				return usageErr(fmt.Errorf("nothing to set: give --hostname, --exit-node or --accept-dns"))
			}
			return callDaemon(g, 45*time.Second, func(ctx context.Context, cl daemonpb.DaemonClient) error {
				resp, err := cl.Set(ctx, req)
				if err != nil {
					return err
				}
				for _, a := range resp.Applied {
					fmt.Fprintln(cmd.OutOrStdout(), a)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&hostname, "hostname", "", "name of this peer")
	cmd.Flags().StringVar(&exitNode, "exit-node", "", "exit node: a peer's name, fqdn or IP; none (off) or auto (the network's choice)")
	cmd.Flags().BoolVar(&acceptDNS, "accept-dns", true, "point the host's resolver at the agent")
	return cmd
}
