package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"petrel/proto/daemonpb"
)

func newDownCmd(g *globalFlags) *cobra.Command {
	var stopDaemon bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Disconnect and remove everything the agent added to the host",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, closeFn, err := dialDaemon(g.socketPath())
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, cancel := withTimeout(30 * time.Second)
			defer cancel()
			if _, err := cl.Down(ctx, &daemonpb.DownRequest{}); err != nil {
				return rpcErr(err)
			}
			if stopDaemon {
				shutdownDaemon(g.socketPath())
			}
			fmt.Fprintln(cmd.OutOrStdout(), "petrel is down")
			return nil
		},
	}
	cmd.Flags().BoolVar(&stopDaemon, "stop-daemon", true, "also stop the background daemon")
	return cmd
}

func newLogoutCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Disconnect and forget the registration (the next up needs a setup key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, closeFn, err := dialDaemon(g.socketPath())
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, cancel := withTimeout(30 * time.Second)
			defer cancel()
			if _, err := cl.Logout(ctx, &daemonpb.LogoutRequest{}); err != nil {
				return rpcErr(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "logged out")
			return nil
		},
	}
}
