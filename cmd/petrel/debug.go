package main

import (
	"context"
	"fmt"
	"path/filepath"
	"petrel/proto/daemonpb"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"petrel/client/daemon"
)

func newDebugCmd(g *globalFlags) *cobra.Command {
	dbg := &cobra.Command{Use: "debug", Short: "Diagnostics and recovery"}
	dbg.AddCommand(&cobra.Command{
		Use:   "cleanup",
		Short: "Undo everything a crashed agent left on the host (from the cleanup journal)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, closeFn, err := dialDaemon(g.socketPath()); err == nil {
				closeFn()
				return fmt.Errorf("a daemon is running at %s; use `petrel down` instead", g.socketPath())
			}
			j := daemon.OpenJournal(filepath.Join(g.stateDir, daemon.JournalFile))
			n, err := j.Replay(daemon.HostUndoers())
			fmt.Fprintf(cmd.OutOrStdout(), "undid %d change(s)\n", n)
			return err
		},
	})
	dbg.AddCommand(newTraceCmd(g), newBundleCmd(g))
	return dbg
}

func newTraceCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "trace SRC DST PROTO [PORT]",
		Short: "Show which of this agent's firewall rules decides a new packet (SRC/DST: address, peer name or self)",
		Example: "  petrel debug trace self db tcp 5432     # may this agent open tcp/5432 to db?\n" +
			"  petrel debug trace dev self tcp 5432     # may dev open tcp/5432 to this agent?\n" +
			"  petrel debug trace self 100.64.0.7 icmp",
		Args: cobra.RangeArgs(3, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &daemonpb.TraceRequest{Src: args[0], Dst: args[1], Proto: args[2]}
			if len(args) == 4 {
				p, err := strconv.ParseUint(args[3], 10, 16)
				if err != nil {
					return &exitError{2, fmt.Errorf("port %q: want 0-65535", args[3])}
				}
				req.Port = uint32(p)
			}
			var r *daemonpb.TraceReply
			if err := callDaemon(g, 10*time.Second, func(ctx context.Context, cl daemonpb.DaemonClient) (err error) {
				r, err = cl.Trace(ctx, req)
				return err
			}); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"allowed": r.Allowed, "rule_id": r.RuleId,
					"policy_id": r.PolicyId, "reason": r.Reason, "direction": r.Direction})
			}
			verdict := "DROPPED"
			if r.Allowed {
				verdict = "ALLOWED"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s (%s): %s\n", verdict, r.Direction, r.Reason)
			if r.RuleId != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "rule %s of policy %s\n", r.RuleId, r.PolicyId)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
