// Command petrel is the Petrel agent: `petrel daemon` runs it, the other
// subcommands talk to a running daemon over its unix socket.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

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
	return filepath.Join(g.stateDir, "petrel.sock")
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

func newRoot() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "petrel",
		Short:         "Petrel mesh VPN agent",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if err := g.checkLogFlags(); err != nil {
			return err
		}
		return g.absolute()
	}
	root.PersistentFlags().StringVar(&g.stateDir, "state-dir", defaultStateDir(), "agent state directory (key, profile, socket)")
	root.PersistentFlags().StringVar(&g.socket, "socket", "", "daemon socket path (default STATE_DIR/petrel.sock)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format of the daemon: "+logFormats)
	root.AddCommand(newDaemonCmd(g), newUpCmd(g), newDownCmd(g), newStatusCmd(g), newPingCmd(g),
		newLoginCmd(g), newLogoutCmd(g), newDebugCmd(g), newRoutesCmd(g), newExitNodeCmd(g), newDNSCmd(g))
	root.AddCommand(newServiceCmd(g))
	return root
}

func main() {
	err := newRoot().Execute()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "petrel:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(1)
}
