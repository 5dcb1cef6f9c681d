// Command petrel is the Petrel agent: `petrel daemon` runs it, the other
// subcommands talk to a running daemon over its unix socket.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"petrel/internal/cmdline"
)

// version, commit and date are set at build time with -ldflags "-X
// main.version=... -X main.commit=... -X main.date=..." (scripts/build.sh
// stamps the commit and date, scripts/package.sh and release.sh the
// version). Unstamped, what the Go toolchain records from the git
// checkout is used (cmdline.Build).
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// globalFlags are shared by every subcommand.
type globalFlags struct {
	stateDir  string
	socket    string
	logLevel  string
	logFormat string
}

func (g *globalFlags) socketPath() string {
	if g.socket != "" {
		return g.socket
	}
	return discoverSocket(g.stateDir) // socket.go
}

// absolute makes the state dir and socket paths absolute: the daemon runs
// detached from the CLI's working directory, and a relative unix socket
// path is not a valid gRPC target.
func (g *globalFlags) absolute() error {
	for _, p := range []*string{&g.stateDir, &g.socket} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return &exitError{2, fmt.Errorf("path %q: %w", *p, err)}
		}
		*p = abs
	}
	return nil
}

func defaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/petrel"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "petrel")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "petrel")
	}
	return filepath.Join(os.TempDir(), "petrel")
}

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func (e *exitError) Unwrap() error { return e.err }

// ExitCode is the process exit status (see cmdline.ExitCode).
func (e *exitError) ExitCode() int { return e.code }

// usageErr marks err as a misuse of the command line (exit status 2).
func usageErr(err error) error { return &exitError{cmdline.ExitUsage, err} }

func newRoot() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "petrel",
		Short:         "Petrel mesh VPN agent",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       cmdline.Build{Version: version, Commit: commit, Date: date}.String(),
	}
	root.SetVersionTemplate("petrel {{.Version}}\n")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if err := g.checkLogFlags(); err != nil {
			return err
		}
		return g.absolute()
	}
	root.PersistentFlags().StringVar(&g.stateDir, "state-dir", defaultStateDir(), "agent state directory (key, profile, socket)")
	root.PersistentFlags().StringVar(&g.socket, "socket", "", "daemon socket path (default: /run/petrel/petrel.sock when it exists and the state dir is the default, else STATE_DIR/petrel.sock)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format of the daemon: "+logFormats)
	root.AddCommand(newDaemonCmd(g), newUpCmd(g), newDownCmd(g), newStatusCmd(g), newPingCmd(g),
		newLoginCmd(g), newLogoutCmd(g), newDebugCmd(g), newRoutesCmd(g), newExitNodeCmd(g), newDNSCmd(g))
	root.AddCommand(newServiceCmd(g), newSetCmd(g))
	root.AddCommand(newNetcheckCmd(g))
	cmdline.EnforceUsage(root, usageErr)
	return root
}

func main() {
	root := newRoot()
	err := root.Execute()
	if err == nil {
		return
	}
	if !errors.Is(err, errQuiet) {
		fmt.Fprintln(os.Stderr, "petrel:", err)
	}
	if raw := rawError(err); raw != nil && root.PersistentFlags().Lookup("log-level").Value.String() == "debug" {
		fmt.Fprintln(os.Stderr, "petrel: (debug) raw error:", raw)
	}
	os.Exit(cmdline.ExitCode(err))
}
