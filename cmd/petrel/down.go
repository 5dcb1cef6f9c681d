package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/client/daemon"
	"petrel/proto/daemonpb"
)

func newDownCmd(g *globalFlags) *cobra.Command {
	var stopDaemon bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Disconnect and remove everything the agent added to the host",
		Long: "Disconnect and remove everything the agent added to the host, then stop the\n" +
			"background daemon (--stop-daemon=false keeps it). Already down (no daemon, or a\n" +
			"daemon that is not connected): says so and exits 0.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			sock := g.socketPath()
			cl, closeFn, err := dialDaemon(sock)
			if errors.Is(err, errNoDaemon) {
				fmt.Fprintln(out, "petrel is already down")
				return nil
			}
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, cancel := withTimeout(30 * time.Second)
			defer cancel()
			st, err := cl.Status(ctx, &daemonpb.StatusRequest{})
			if err != nil {
				return rpcErr(err)
			}
			// Down also ends a background reconnect of a "down" agent.
			if _, err := cl.Down(ctx, &daemonpb.DownRequest{}); err != nil {
				return rpcErr(err)
			}
			if stopDaemon {
				shutdownDaemon(sock)
			}
			if st.State == "down" || st.State == "needs-login" {
				fmt.Fprintln(out, "petrel is already down")
			} else {
				fmt.Fprintln(out, "petrel is down")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&stopDaemon, "stop-daemon", true, "also stop the background daemon")
	return cmd
}

func newLogoutCmd(g *globalFlags) *cobra.Command {
	f := &daemonFlags{}
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Deregister this machine from its management server and forget the registration",
		Long: "Tell the management server to delete this peer (its name becomes free), disconnect,\n" +
			"and forget the registration; the key and the server URL stay, so the next up needs\n" +
			"only a setup key. Works with the daemon stopped (from the state dir).\n\n" +
			"Exit status: 0 when the server deleted the peer (or no longer knew it) or the\n" +
			"machine was not logged in; 1 when the server could not be told (the registration\n" +
			"is cleared locally anyway; run logout again to retry telling it, or delete the\n" +
			"peer on the server) or the logout failed; 2 for a usage error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.checkCAFile(); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			ctx, cancel := withTimeout(30 * time.Second)
			defer cancel()
			var resp *daemonpb.LogoutResponse
			cl, closeFn, err := dialDaemon(g.socketPath())
			switch {
			case errors.Is(err, errNoDaemon):
				resp, err = daemon.Logout(ctx, daemon.StateDir{Path: g.stateDir}, f.caFile)
			case err != nil:
				return err
			default:
				defer closeFn()
				resp, err = cl.Logout(ctx, &daemonpb.LogoutRequest{})
				if status.Code(err) == codes.FailedPrecondition && strings.Contains(status.Convert(err).Message(), daemon.ErrNotLoggedIn.Error()) {
					err = daemon.ErrNotLoggedIn
				} else if err != nil {
					err = rpcErr(err)
				}
			}
			if errors.Is(err, daemon.ErrNotLoggedIn) {
				fmt.Fprintln(out, "petrel is not logged in")
				return nil
			}
			if err != nil {
				return err
			}
			if !resp.ServerTold {
				return fmt.Errorf("logged out locally, but the management server could not be told (%s); "+
					"run petrel logout again to retry, or delete this peer on the server", resp.ServerError)
			}
			fmt.Fprintln(out, "logged out; the management server deleted this peer")
			return nil
		},
	}
	f.registerCAFile(cmd)
	return cmd
}
