package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"petrel/client/daemon"
	"petrel/proto/daemonpb"
)

func newUpCmd(g *globalFlags) *cobra.Command {
	f := &daemonFlags{}
	var (
		mgmtURL, hostname      string
		setupKey               setupKeyFlags
		foreground, waitPeers  bool
		exitAllowLAN, exitKill bool
		timeout                time.Duration
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Connect this machine to the Petrel network",
		Long: "Connect this machine: registers with a setup key the first time, then connects\n" +
			"to management, signal, relay and the peers. Starts a background daemon unless\n" +
			"one is running or --foreground is given.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if mgmtURL != "" {
				u, err := daemon.ValidateManagementURL(mgmtURL)
				if err != nil {
					return &exitError{2, err}
				}
				mgmtURL = u
			}
			if !f.netstack && !privileged() {
				return &exitError{2, errors.New("TUN mode needs " + privilegeHint + "; run as " + privilegeHint + " or use --netstack")}
			}
			if err := f.checkCAFile(); err != nil {
				return err
			}
			key, err := setupKey.resolve(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			req := &daemonpb.UpRequest{ManagementUrl: mgmtURL, SetupKey: key, Hostname: hostname,
				WaitPeers: waitPeers, TimeoutMs: timeout.Milliseconds()}
			if cmd.Flags().Changed("exit-node-allow-lan") {
				req.ExitNodeAllowLan = &exitAllowLAN
			}
			if cmd.Flags().Changed("exit-node-kill-switch") {
				req.ExitNodeKillSwitch = &exitKill
			}
			out := cmd.OutOrStdout()
			if foreground {
				return upForeground(g, f, req, out)
			}
			return upBackground(g, f, req, out)
		},
	}
	cmd.Flags().StringVar(&mgmtURL, "management-url", "", "management server URL, e.g. http://vpn.example.net:8080")
	setupKey.register(cmd)
	cmd.Flags().StringVar(&hostname, "hostname", "", "name of this peer (default: the host name)")
	cmd.Flags().BoolVar(&foreground, "foreground", false, "run the daemon in this process until SIGINT/SIGTERM")
	cmd.Flags().BoolVar(&waitPeers, "wait-peers", false, "wait until every peer is connected")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the connection")
	cmd.Flags().BoolVar(&exitAllowLAN, "exit-node-allow-lan", true,
		"with an exit node in use, keep local subnets reachable outside the tunnel (saved)")
	cmd.Flags().BoolVar(&exitKill, "exit-node-kill-switch", false,
		"with an exit node selected, drop internet traffic while it is unreachable instead of leaking it (saved)")
	f.register(cmd)
	return cmd
}

// upForeground runs a daemon in this process, brings it up and waits for a signal.
func upForeground(g *globalFlags, f *daemonFlags, req *daemonpb.UpRequest, out io.Writer) error {
	d := daemon.New(f.options(g))
	if err := d.Start(context.Background()); err != nil {
		return err
	}
	if err := runUp(g.socketPath(), req, out); err != nil {
		d.Stop()
		return err
	}
	fmt.Fprintln(out, "petrel is up; press Ctrl-C to disconnect")
	waitSignal(d)
	fmt.Fprintln(out, "petrel is down")
	return nil
}

// upBackground uses the running daemon or starts one detached.
func upBackground(g *globalFlags, f *daemonFlags, req *daemonpb.UpRequest, out io.Writer) error {
	sock := g.socketPath()
	started := false
	if _, closeFn, err := dialDaemon(sock); err == nil {
		closeFn()
		if f.caFile != "" {
			fmt.Fprintln(out, "note: a daemon is already running and keeps the --ca-file it started with (`petrel down` stops it)")
		}
	} else {
		if err := spawnDaemon(g, f); err != nil {
			return err
		}
		started = true
	}
	if err := runUp(sock, req, out); err != nil {
		if started {
			shutdownDaemon(sock)
		}
		return err
	}
	return nil
}

func spawnDaemon(g *globalFlags, f *daemonFlags) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	st := daemon.StateDir{Path: g.stateDir}
	if err := st.Ensure(); err != nil {
		return err
	}
	logf, err := os.OpenFile(g.stateDir+"/"+daemon.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open daemon log: %w", err)
	}
	defer logf.Close()
	args := append([]string{"daemon", "--state-dir", g.stateDir, "--socket", g.socketPath(), "--log-level", g.logLevel, "--log-format", g.logFormat}, f.args()...)
	c := exec.Command(exe, args...)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = detachAttr()
	if err := c.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	go c.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, closeFn, err := dialDaemon(g.socketPath()); err == nil {
			closeFn()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("daemon did not start; see %s/%s", g.stateDir, daemon.LogFile)
}

func shutdownDaemon(sock string) {
	cl, closeFn, err := dialDaemon(sock)
	if err != nil {
		return
	}
	defer closeFn()
	ctx, cancel := withTimeout(5 * time.Second)
	defer cancel()
	_, _ = cl.Shutdown(ctx, &daemonpb.ShutdownRequest{})
	for i := 0; i < 50; i++ {
		if _, c, err := dialDaemon(sock); err != nil {
			return
		} else {
			c()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runUp calls Up and prints progress lines.
func runUp(sock string, req *daemonpb.UpRequest, out io.Writer) error {
	cl, closeFn, err := dialDaemon(sock)
	if err != nil {
		return err
	}
	defer closeFn()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(req.TimeoutMs)*time.Millisecond+10*time.Second)
	defer cancel()
	stream, err := cl.Up(ctx, req)
	if err != nil {
		return rpcErr(err)
	}
	var last *daemonpb.UpProgress
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rpcErr(err)
		}
		last = p
		fmt.Fprintln(out, progressLine(p))
	}
	if last == nil {
		return errors.New("daemon ended the up call without progress")
	}
	return nil
}

func progressLine(p *daemonpb.UpProgress) string {
	mark := func(ok bool) string {
		if ok {
			return "ok"
		}
		return ".."
	}
	return fmt.Sprintf("[%-10s] management %s  signal %s  relay %s  peers %d/%d  %s",
		p.Stage, mark(p.ManagementConnected), mark(p.SignalConnected), mark(p.RelayConnected),
		p.PeersConnected, p.PeersTotal, p.Message)
}
