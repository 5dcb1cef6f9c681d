package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"petrel/client/daemon"
	"petrel/proto/daemonpb"
)

func newLoginCmd(g *globalFlags) *cobra.Command {
	f := &daemonFlags{}
	var (
		mgmtURL, hostname string
		setupKey          setupKeyFlags
		timeout           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Register this machine with a management server (without connecting)",
		Long: "Register this machine with a setup key (or re-authenticate its key) and remember the\n" +
			"management server; `petrel up` then connects without a setup key.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := daemon.ValidateManagementURL(mgmtURL)
			if err != nil {
				return &exitError{2, err}
			}
			if err := f.checkCAFile(); err != nil {
				return err
			}
			key, err := setupKey.resolve(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			sock := g.socketPath()
			started := false
			if _, closeFn, err := dialDaemon(sock); err == nil {
				closeFn()
			} else {
				if err := spawnDaemon(g, f); err != nil {
					return err
				}
				started = true
			}
			defer func() {
				if started {
					shutdownDaemon(sock)
				}
			}()
			cl, closeFn, err := dialDaemon(sock)
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, cancel := withTimeout(timeout + 5*time.Second)
			defer cancel()
			resp, err := cl.Login(ctx, &daemonpb.LoginRequest{ManagementUrl: u, SetupKey: key, Hostname: hostname,
				TimeoutMs: timeout.Milliseconds()})
			if err != nil {
				return rpcErr(err)
			}
			if resp.Ip == "" {
				return errors.New("management returned no address")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registered as %s (%s); run `petrel up` to connect\n", resp.Fqdn, resp.Ip)
			return nil
		},
	}
	cmd.Flags().StringVar(&mgmtURL, "management-url", "", "management server URL, e.g. http://vpn.example.net:8080")
	setupKey.register(cmd)
	f.registerCAFile(cmd)
	cmd.Flags().StringVar(&hostname, "hostname", "", "name of this peer (default: the host name)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to keep trying an unreachable server")
	f.netstack = true // registration needs no TUN device
	return cmd
}
