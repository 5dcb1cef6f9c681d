// Command petrel-server is the Petrel control plane: management (gRPC for
// agents, REST for admins), signal, relay and STUN. `petrel-server run`
// serves them through package server, by default all in one process on one
// TCP port plus STUN on UDP; `groups`, `policies` (with `check` and the
// declarative `apply`), `routes`, `dns`, `peers`, `setup-keys`, `users`,
// `tokens`, `events` and `settings` are admin clients of the REST API;
// `admin-token create` adds an admin token offline; `config check`
// validates a config file for `run --config`.
//
// This package is a thin layer: flags (filled also from the config file
// and PETREL_* variables, config.go) are parsed once here into
// server.Config (validated by server.New); nothing below reads flags or
// environment.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "petrel-server:", err)
		os.Exit(exitCode(err))
	}
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "petrel-server",
		Short:         "Petrel control plane: management, signal, relay and STUN",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newRunCmd(), newSetupKeyCmd(), newPeersCmd(), newAdminTokenCmd(), newConfigCmd())
	root.AddCommand(newGroupsCmd(), newPoliciesCmd(), newRoutesCmd(), newDNSCmd())
	root.AddCommand(newUsersCmd(), newTokensCmd(), newEventsCmd(), newSettingsCmd())
	root.Version = versionString()
	root.SetVersionTemplate("petrel-server {{.Version}}\n")
	enforceUsage(root)
	return root
}
