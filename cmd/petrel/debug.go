package main

import (
	"fmt"
	"path/filepath"

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
	return dbg
}
