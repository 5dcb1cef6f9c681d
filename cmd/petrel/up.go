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
		forceReauth, signIn    bool
		asJSON                 bool
		timeout                time.Duration
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Connect this machine to the Petrel network",
		Long: "Connect this machine: registers with a setup key the first time (or, on a server\n" +
			"with an identity provider, signs you in: it shows a link and a code to approve in\n" +
			"a browser, and a QR code on a terminal), then connects\n" +
			"to management, signal, relay and the peers. Starts a background daemon unless\n" +
			"one is running or --foreground is given.\n\n" +
			"Already up with the same settings: nothing changes (exit 0). Asked for settings the\n" +
			"running agent does not have (--hostname, --netstack, --wg-port, ...): nothing\n" +
			"changes; it says what differs and how to apply it (petrel set, or petrel down and\n" +
			"up again), exit 1. A --management-url other than the registered one needs\n" +
			"--force-reauth and a setup key; the running connection stays up until the login\n" +
			"to the new server succeeded.\n\n" +
			"Exit status: 0 up (or already up), 1 failed or refused, 2 usage error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := validateURL("--management-url", mgmtURL)
			if err = joinUsage(err, validateHostname("--hostname", hostname), validatePositive("--timeout", timeout)); err != nil {
				return err
			}
			mgmtURL = u
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
			var idToken string
			if key == "" {
				if idToken, err = signInToken(cmd, g, f, mgmtURL, signIn); err != nil {
					return err
				}
			}
			req := &daemonpb.UpRequest{ManagementUrl: mgmtURL, SetupKey: key, Hostname: hostname,
				WaitPeers: waitPeers, TimeoutMs: timeout.Milliseconds(), ForceReauth: forceReauth,
				Flags: f.upFlags(cmd), IdToken: idToken}
			if cmd.Flags().Changed("exit-node-allow-lan") {
				req.ExitNodeAllowLan = &exitAllowLAN
			}
			if cmd.Flags().Changed("exit-node-kill-switch") {
				req.ExitNodeKillSwitch = &exitKill
			}
			out := upPrinter{w: cmd.OutOrStdout(), json: asJSON}
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the progress as JSON, one object per line (docs/cli.md)")
	cmd.Flags().BoolVar(&signIn, "sign-in", false,
		"sign in through the server's identity provider even if this machine is registered (renews its login)")
	cmd.Flags().BoolVar(&forceReauth, "force-reauth", false,
		"register with a --management-url other than the one this machine is registered with")
	cmd.Flags().BoolVar(&exitAllowLAN, "exit-node-allow-lan", true,
		"with an exit node in use, keep local subnets reachable outside the tunnel (saved)")
	cmd.Flags().BoolVar(&exitKill, "exit-node-kill-switch", false,
		"with an exit node selected, drop internet traffic while it is unreachable instead of leaking it (saved)")
	f.register(cmd)
	return cmd
}

// upForeground runs a daemon in this process, brings it up and waits for a signal.
func upForeground(g *globalFlags, f *daemonFlags, req *daemonpb.UpRequest, out upPrinter) error {
	d := daemon.New(f.options(g))
	if err := d.Start(context.Background()); err != nil {
		return err
	}
	if err := runUp(d.Socket(), req, out); err != nil {
		d.Stop()
		return err
	}
	out.note("petrel is up; press Ctrl-C to disconnect")
	waitSignal(d)
	out.note("petrel is down")
	return nil
}

// upBackground uses the running daemon or starts one detached.
func upBackground(g *globalFlags, f *daemonFlags, req *daemonpb.UpRequest, out upPrinter) error {
	sock, started, err := ensureDaemon(g, f)
	if err != nil {
		return err
	}
	if err := runUp(sock, req, out); err != nil {
		if started {
			shutdownDaemon(sock)
		}
		return err
	}
	return nil
}

// ensureDaemon returns the socket of the running daemon, or starts one
// (started) and returns its socket.
func ensureDaemon(g *globalFlags, f *daemonFlags) (sock string, started bool, err error) {
	sock = g.socketPath()
	_, closeFn, err := dialDaemon(sock)
	if err == nil {
		closeFn()
		return sock, false, nil
	}
	if !errors.Is(err, errNoDaemon) {
		return "", false, err
	}
	sock = f.daemonSocket(g)
	if err := spawnDaemon(g, f, sock); err != nil {
		return "", false, err
	}
	return sock, true, nil
}

// upFlags are the daemon flags given explicitly, for a running daemon to
// compare with its own.
func (f *daemonFlags) upFlags(cmd *cobra.Command) *daemonpb.UpFlags {
	fl := cmd.Flags()
	u := &daemonpb.UpFlags{}
	if fl.Changed("netstack") {
		u.Netstack = &f.netstack
	}
	if fl.Changed("interface") {
		u.InterfaceName = &f.iface
	}
	if fl.Changed("mtu") {
		m := int32(f.mtu)
		u.Mtu = &m
	}
	if fl.Changed("wg-port") {
		p := int32(f.wgPort)
		u.WgPort = &p
	}
	if fl.Changed("force-relay") {
		u.ForceRelay = &f.forceRelay
	}
	if fl.Changed("dns-mode") {
		u.DnsMode = &f.dnsMode
	}
	if fl.Changed("ca-file") {
		u.CaFile = &f.caFile
	}
	return u
}

func spawnDaemon(g *globalFlags, f *daemonFlags, sock string) error {
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
	args := append([]string{"daemon", "--state-dir", g.stateDir, "--socket", sock, "--log-level", g.logLevel, "--log-format", g.logFormat}, f.args()...)
	c := exec.Command(exe, args...)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = detachAttr()
	if err := c.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	go c.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, closeFn, err := dialDaemon(sock); err == nil {
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
func runUp(sock string, req *daemonpb.UpRequest, out upPrinter) error {
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
		out.progress(p)
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
