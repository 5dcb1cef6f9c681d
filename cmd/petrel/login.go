package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"petrel/proto/daemonpb"
)

func newLoginCmd(g *globalFlags) *cobra.Command {
	// The daemon login may start runs with the defaults of every daemon
	// flag (login exposes only --ca-file).
	f := &daemonFlags{}
	f.register(&cobra.Command{})
	var (
		mgmtURL, hostname string
		setupKey          setupKeyFlags
		signIn            bool
		timeout           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Register this machine with a management server (without connecting)",
		Long: "Register this machine with a setup key (or re-authenticate its key) and remember the\n" +
			"management server; `petrel up` then connects without a setup key. On a server with an\n" +
			"identity provider, a machine that is not registered (or whose login expired) signs\n" +
			"you in instead: approve the shown link and code in a browser. --sign-in renews a\n" +
			"login before it expires.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if mgmtURL == "" {
				return usageErr(errors.New("--management-url is required"))
			}
			u, err := validateURL("--management-url", mgmtURL)
			if err = joinUsage(err, validateHostname("--hostname", hostname), validatePositive("--timeout", timeout)); err != nil {
				return err
			}
			if err := f.checkCAFile(); err != nil {
				return err
			}
			key, err := setupKey.resolve(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			var idToken string
			if key == "" {
				if idToken, err = signInToken(cmd, g, f, u, signIn); err != nil {
					return err
				}
			}
			sock, started, err := ensureDaemon(g, f)
			if err != nil {
				return err
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
				TimeoutMs: timeout.Milliseconds(), IdToken: idToken})
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
	cmd.Flags().BoolVar(&signIn, "sign-in", false, "sign in through the server's identity provider even if this machine is registered")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to keep trying an unreachable server")
	f.netstack = true // registration needs no TUN device
	return cmd
}
