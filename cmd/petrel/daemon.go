package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"petrel/client/daemon"
	"petrel/client/wg"
	"petrel/internal/metrics"
	"petrel/internal/tlstrust"
)

// daemonFlags are the data-plane options of a daemon.
type daemonFlags struct {
	netstack   bool
	iface      string
	mtu        int
	wgPort     int
	socks5     string
	loopback   bool
	forceRelay bool
	caFile     string
	dnsMode    string
	dnsAddr    string
	noBypass   bool          // debug knob
	cacheTTL   time.Duration // debug knob
	noFW       bool          // debug knob
	metrics    metricsAddr   // --metrics-listen ("" = off)
	pprof      bool
	opGroup    string // --operator-group
}

// metricsAddr is --metrics-listen, checked as it is parsed.
type metricsAddr string

func (m *metricsAddr) String() string { return string(*m) }
func (m *metricsAddr) Type() string   { return "HOST:PORT" }
func (m *metricsAddr) Set(s string) error {
	a, err := metrics.ParseListen(s)
	if err != nil {
		return err
	}
	*m = metricsAddr(a)
	return nil
}

func (f *daemonFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.netstack, "netstack", false, "userspace network stack (no root; overlay reachable through a SOCKS5 proxy)")
	cmd.Flags().StringVar(&f.iface, "interface", wg.DefaultInterfaceName(), "TUN interface name")
	cmd.Flags().IntVar(&f.mtu, "mtu", 1280, "tunnel MTU")
	cmd.Flags().IntVar(&f.wgPort, "wg-port", 0, "WireGuard/ICE UDP port (0 = the previous run's port if free, else random)")
	cmd.Flags().StringVar(&f.socks5, "socks5", "127.0.0.1:0", "netstack mode: SOCKS5 listen address")
	cmd.Flags().BoolVar(&f.loopback, "ice-loopback", false, "offer loopback ICE candidates (single-host demos and tests only)")
	cmd.Flags().BoolVar(&f.forceRelay, "force-relay", false, "never try direct paths (diagnostics)")
	cmd.Flags().StringVar(&f.opGroup, "operator-group", daemon.DefaultOperatorGroup,
		"root daemon: members of this group may run petrel status without sudo (\"\" = root only)")
	f.registerCAFile(cmd)
	cmd.Flags().Var(&f.metrics, "metrics-listen", "serve Prometheus /metrics on HOST:PORT (default off; see docs/metrics.md)")
	cmd.Flags().BoolVar(&f.pprof, "pprof", false, "also serve Go's profiler at /debug/pprof/ on the --metrics-listen address")
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if f.pprof && f.metrics == "" {
			return &exitError{2, errors.New("--pprof needs --metrics-listen (the profiler is served only there)")}
		}
		return f.validate() // validate.go: ports, MTU, names, paths, before anything starts
	}
	cmd.Flags().StringVar(&f.dnsMode, "dns-mode", "auto", "point the host's resolver at the agent: auto, file (resolv.conf), resolved (systemd-resolved), off")
	cmd.Flags().StringVar(&f.dnsAddr, "dns", "127.0.0.1:0", "netstack mode: resolver listen address (loopback)")
	// Debug knobs (hidden): behaviour switches for diagnosis and tests.
	cmd.Flags().BoolVar(&f.noBypass, "debug-dns-no-bypass", false, "debug: no bypass resolver for control-plane names")
	_ = cmd.Flags().MarkHidden("ice-loopback")
	cmd.Flags().DurationVar(&f.cacheTTL, "debug-dns-cache-ttl", 0, "debug: control-plane DNS cache TTL (0 = 5m)")
	_ = cmd.Flags().MarkHidden("debug-dns-no-bypass")
	cmd.Flags().BoolVar(&f.noFW, "debug-no-firewall", false, "debug: no packet filter (benchmarks only: the access policy is not enforced)")
	_ = cmd.Flags().MarkHidden("debug-dns-cache-ttl")
	_ = cmd.Flags().MarkHidden("debug-no-firewall")
}

// registerCAFile adds --ca-file, the one daemon flag `petrel login` takes
// too (it may start the daemon that registers).
func (f *daemonFlags) registerCAFile(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.caFile, "ca-file", "", "PEM file of the CA certificates to trust for an https:// management server (default: the system roots)")
}

// checkCAFile fails early, as a usage error, on a --ca-file that does not
// load, and makes its path absolute for a daemon started elsewhere; the
// daemon reads the file again at each connect.
func (f *daemonFlags) checkCAFile() error {
	if f.caFile == "" {
		return nil
	}
	abs, err := filepath.Abs(f.caFile)
	if err == nil {
		_, err = tlstrust.LoadRoots(abs)
	}
	if err != nil {
		return &exitError{2, fmt.Errorf("--ca-file: %w", err)}
	}
	f.caFile = abs
	return nil
}

func (f *daemonFlags) options(g *globalFlags) daemon.Options {
	return daemon.Options{
		StateDir:      g.stateDir,
		Socket:        f.daemonSocket(g),
		OperatorGroup: f.opGroup,
		Netstack:      f.netstack,
		InterfaceName: f.iface,
		MTU:           f.mtu,
		WGPort:        f.wgPort,
		SOCKS5Addr:    f.socks5,
		ICELoopback:   f.loopback,
		ForceRelay:    f.forceRelay,
		CAFile:        f.caFile,
		DNSMode:       f.dnsMode,
		DNSAddr:       f.dnsAddr,
		DNSNoBypass:   f.noBypass,
		DNSCacheTTL:   f.cacheTTL,
		NoFirewall:    f.noFW,
		MetricsListen: string(f.metrics),
		Pprof:         f.pprof,
		Logger:        newLogger(g),
	}
}

func (f *daemonFlags) args() []string {
	a := []string{"--interface", f.iface, "--mtu", fmt.Sprint(f.mtu), "--wg-port", fmt.Sprint(f.wgPort), "--socks5", f.socks5,
		"--operator-group", f.opGroup}
	if f.netstack {
		a = append(a, "--netstack")
	}
	if f.loopback {
		a = append(a, "--ice-loopback")
	}
	if f.forceRelay {
		a = append(a, "--force-relay")
	}
	if f.caFile != "" {
		a = append(a, "--ca-file", f.caFile)
	}
	a = append(a, "--dns-mode", f.dnsMode, "--dns", f.dnsAddr)
	if f.noBypass {
		a = append(a, "--debug-dns-no-bypass")
	}
	if f.noFW {
		a = append(a, "--debug-no-firewall")
	}
	if f.cacheTTL > 0 {
		a = append(a, "--debug-dns-cache-ttl", f.cacheTTL.String())
	}
	if f.metrics != "" {
		a = append(a, "--metrics-listen", string(f.metrics))
	}
	if f.pprof {
		a = append(a, "--pprof")
	}
	return a
}

func newDaemonCmd(g *globalFlags) *cobra.Command {
	f := &daemonFlags{}
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the agent daemon (root for TUN mode)",
		Long: "Run the agent daemon in the foreground. As root in TUN mode with the system state\n" +
			"dir (" + daemon.SystemStateDir + ") it serves its local API at " + daemon.SystemSocket + ",\n" +
			"which members of --operator-group may use for read-only commands (status,\n" +
			"dns status, debug trace); every other command needs root. Otherwise the socket is\n" +
			"STATE_DIR/petrel.sock, private to the daemon's user.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !f.netstack && !privileged() {
				return fmt.Errorf("TUN mode needs %s; run as %s or use --netstack", privilegeHint, privilegeHint)
			}
			if err := f.checkCAFile(); err != nil {
				return err
			}
			d := daemon.New(f.options(g))
			if err := d.Start(context.Background()); err != nil {
				return err
			}
			newLogger(g).Info("petrel daemon listening", "socket", d.Socket(), "version", version)
			waitSignal(d)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

// waitSignal blocks until SIGINT/SIGTERM (then stops d) or until d stops.
func waitSignal(d *daemon.Daemon) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case <-sig:
		d.Stop()
	case <-d.Done():
	}
}
