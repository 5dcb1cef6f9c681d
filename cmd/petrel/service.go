package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"petrel/client/service"
)

// serviceFlags are the flags of `service install|uninstall`.
type serviceFlags struct {
	unitDir string
	noStart bool
	force   bool
}

func (s *serviceFlags) register(cmd *cobra.Command, forceUsage string) {
	cmd.Flags().StringVar(&s.unitDir, "unit-dir", service.DefaultUnitDir, "directory of the unit file")
	cmd.Flags().BoolVar(&s.noStart, "no-start", false, "only write or remove the unit file; no systemctl (no running systemd needed)")
	cmd.Flags().BoolVar(&s.force, "force", false, forceUsage)
}

func (s *serviceFlags) options(g *globalFlags) service.Options {
	return service.Options{UnitDir: s.unitDir, NoStart: s.noStart, Force: s.force,
		DaemonRunning: func() bool { return socketAnswers(g.socketPath()) }}
}

func newServiceCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Install or remove the systemd service that runs the agent daemon",
	}
	cmd.AddCommand(newServiceInstallCmd(g), newServiceUninstallCmd(g))
	return cmd
}

func newServiceInstallCmd(g *globalFlags) *cobra.Command {
	var s serviceFlags
	cmd := &cobra.Command{
		Use:   "install [flags] [-- DAEMON-FLAGS...]",
		Short: "Run the agent daemon as the systemd service petrel.service",
		Long: `Install writes /etc/systemd/system/petrel.service, which runs this binary as
"petrel daemon --state-dir STATE_DIR" as root, then runs systemctl
daemon-reload, enable and restart. Flags after "--" are added to the daemon's
command line, e.g. "petrel service install -- --netstack --ca-file /etc/petrel/ca.pem";
they are checked like "petrel daemon" checks them. Running it again with the
same flags changes nothing; with other flags it rewrites the unit and restarts
the service. A unit file that petrel did not write is not replaced without
--force. Then connect with "petrel up --management-url URL --setup-key-file FILE".`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if n := cmd.ArgsLenAtDash(); n > 0 || (n < 0 && len(args) > 0) {
				return &exitError{2, fmt.Errorf("unexpected argument %q: daemon flags go after \"--\"", args[0])}
			}
			unit, err := serviceUnit(cmd, g, args)
			if err != nil {
				return err
			}
			o := s.options(g)
			o.Unit = unit
			res, err := service.Install(o)
			if err != nil {
				return err
			}
			reportInstall(cmd.OutOrStdout(), g, res)
			return nil
		},
	}
	s.register(cmd, "replace a unit file that petrel did not write")
	return cmd
}

func newServiceUninstallCmd(g *globalFlags) *cobra.Command {
	var s serviceFlags
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Stop, disable and remove the petrel.service unit (the state directory stays)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := service.Uninstall(s.options(g))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if res.Action == service.Absent {
				fmt.Fprintf(out, "no %s: nothing to uninstall\n", res.Path)
				return nil
			}
			if !s.noStart {
				fmt.Fprintf(out, "stopped and disabled %s\n", service.UnitName)
			}
			fmt.Fprintf(out, "removed %s\n", res.Path)
			fmt.Fprintf(out, "the state directory %s (key, registration) is left in place; delete it to make this machine forget its registration\n", g.stateDir)
			return nil
		},
	}
	s.register(cmd, "remove a unit file that petrel did not write")
	return cmd
}

// serviceUnit builds the unit's config: this binary, the state directory,
// the log flags when given, and the daemon flags after "--", checked and
// written as --name=value (a --ca-file made absolute).
func serviceUnit(cmd *cobra.Command, g *globalFlags, daemonArgs []string) (service.Config, error) {
	if g.socket != "" {
		return service.Config{}, &exitError{2, errors.New("--socket cannot be used with service install: the service's socket is STATE_DIR/petrel.sock")}
	}
	exe, err := os.Executable()
	if err != nil {
		return service.Config{}, fmt.Errorf("find own executable: %w", err)
	}
	c := service.Config{Binary: exe, StateDir: g.stateDir}
	for _, name := range []string{"log-level", "log-format"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			c.Args = append(c.Args, "--"+name+"="+f.Value.String())
		}
	}
	args, err := checkDaemonArgs(daemonArgs)
	if err != nil {
		return service.Config{}, err
	}
	c.Args = append(c.Args, args...)
	return c, nil
}

// checkDaemonArgs parses args as `petrel daemon` flags and returns them
// normalised, or a usage error.
func checkDaemonArgs(args []string) ([]string, error) {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "state-dir", "socket", "log-level", "log-format":
			return nil, &exitError{2, fmt.Errorf("daemon flag %s: give it before \"service\", e.g. petrel --%s ... service install", a, name)}
		}
	}
	tmp := &cobra.Command{Use: "daemon"}
	f := &daemonFlags{}
	f.register(tmp)
	fs := tmp.Flags()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			err = errors.New("help flag")
		}
		return nil, &exitError{2, fmt.Errorf("daemon flags: %w", err)}
	}
	if fs.NArg() > 0 {
		return nil, &exitError{2, fmt.Errorf("daemon flags: unexpected argument %q", fs.Arg(0))}
	}
	if err := f.checkCAFile(); err != nil {
		return nil, err
	}
	var out []string
	// checkCAFile made --ca-file absolute in place: Visit sees the new value.
	fs.Visit(func(fl *pflag.Flag) {
		v := fl.Value.String()
		if fl.Value.Type() == "bool" && v == "true" {
			out = append(out, "--"+fl.Name)
			return
		}
		out = append(out, "--"+fl.Name+"="+v)
	})
	return out, nil
}

func reportInstall(out io.Writer, g *globalFlags, res service.Result) {
	switch res.Action {
	case service.Unchanged:
		fmt.Fprintf(out, "%s is up to date\n", res.Path)
	case service.Updated:
		fmt.Fprintf(out, "rewrote %s\n", res.Path)
	default:
		fmt.Fprintf(out, "wrote %s\n", res.Path)
	}
	if !res.Started {
		fmt.Fprintf(out, "not started (--no-start); with systemd running: systemctl daemon-reload && systemctl enable --now %s\n", service.UnitName)
		return
	}
	fmt.Fprintf(out, "%s is enabled and running\n", service.UnitName)
	state := ""
	if g.stateDir != service.DefaultStateDir {
		state = " --state-dir " + g.stateDir
	}
	fmt.Fprintf(out, "connect this machine with: petrel%s up --management-url URL --setup-key-file FILE\n", state)
}

// socketAnswers reports whether something accepts connections on the
// daemon socket.
func socketAnswers(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
