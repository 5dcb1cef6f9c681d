package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	ossignal "os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"petrel/relay"
	"petrel/server"
)

// runFlags holds the raw flag values of `run`.
type runFlags struct {
	dataDir, listen, stunListen, store, publicURL string
	relayURLs, stunURLs                           []string
	relaySecretFile, relayInstanceURL             string
	signalKeyFile                                 string
	components                                    string
	logLevel, logFormat                           string
	maxConnsPerSource                             int
	tls                                           tlsFlags
	metricsListen                                 string
	pprof                                         bool
	ha                                            bool
	clusterURL                                    string
	oidc                                          oidcFlags
}

func newRunCmd() *cobra.Command {
	cmd, _ := newRunCmdFlags()
	return cmd
}

// newRunCmdFlags returns `run` and the values its flags parse into.
func newRunCmdFlags() (*cobra.Command, *runFlags) {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run --data-dir DIR --listen HOST:PORT [flags]",
		Short: "Run the control plane until SIGINT or SIGTERM",
		Long: `Run serves the selected components. gRPC (management, signal), the REST API
(/api) and the relay WebSocket (/relay) share the --listen TCP port; STUN
listens on UDP --stun-listen.

With --tls-cert/--tls-key (files, reloaded when they change) or
--acme-domain (certificates from an ACME CA such as Let's Encrypt) the port
serves TLS: agents then use https:// and rels:// URLs. See docs/https.md.

On first start with an empty store it creates the default account and writes
its admin API token to DATA_DIR/admin-token (mode 0600).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := ossignal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, &f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "", "directory for the SQLite store, admin token and relay secret (required)")
	fl.StringVar(&f.listen, "listen", ":8080", "TCP address for gRPC, REST and relay")
	fl.StringVar(&f.stunListen, "stun-listen", ":3478", "UDP address for STUN")
	fl.StringVar(&f.store, "store", "sqlite", "store: sqlite (DATA_DIR/petrel.db), sqlite:///path.db or postgres://DSN")
	fl.BoolVar(&f.ha, "ha", false, "run as one of several petrel-servers on one postgres:// --store (see docs/deployment.md)")
	fl.StringVar(&f.clusterURL, "cluster-url", "", "with --ha: URL the other instances reach this one at to forward signal (default http://<listen host or hostname>:<port>, https:// with TLS)")
	fl.StringVar(&f.publicURL, "public-url", "", "URL agents use for management and signal (default http://<listen host or hostname>:<port>; https:// with TLS, the first --acme-domain as host with ACME)")
	fl.StringArrayVar(&f.relayURLs, "relay-url", nil, "relay URL advertised to agents, rel:// or rels:// (repeatable; default this relay's instance URL)")
	fl.StringArrayVar(&f.stunURLs, "stun-url", nil, "STUN URL advertised to agents (repeatable; default stun:<public host>:<stun port>)")
	fl.StringVar(&f.relaySecretFile, "relay-secret-file", "", "shared relay HMAC secret, created if absent (default DATA_DIR/relay-secret)")
	fl.StringVar(&f.relayInstanceURL, "relay-instance-url", "", "this relay instance's URL (default rel://<public host>:<public port>, rels:// for an https public URL)")
	fl.StringVar(&f.signalKeyFile, "signal-key-file", "", "signal without management: key file (created if absent) instead of the server key in the store")
	fl.StringVar(&f.components, "components", "management,signal,relay,stun", "components to run")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text (key=value) or json (one object a line)")
	fl.IntVar(&f.maxConnsPerSource, "max-conns-per-source", server.DefaultMaxConnsPerSource,
		"TCP connections one source IP may hold open at once (-1 = no cap; raise it when many agents share one NAT address)")
	f.tls.register(fl)
	fl.StringVar(&f.metricsListen, "metrics-listen", server.DefaultMetricsListen, "HOST:PORT serving Prometheus /metrics (off disables; see docs/metrics.md)")
	fl.BoolVar(&f.pprof, "pprof", false, "also serve Go's profiler at /debug/pprof/ on the --metrics-listen address")
	f.oidc.register(fl)
	withConfig(cmd, &f)
	return cmd, &f
}

// server validates the flags into a server (not started) and its logger.
// Every problem is reported, as a usage error.
func (f *runFlags) server(stderr io.Writer) (*server.Server, *slog.Logger, error) {
	var errs []error
	comps, err := server.ParseComponents(f.components)
	if err != nil {
		errs = append(errs, fmt.Errorf("--components: %w", err))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel))
	}
	if f.logFormat != "text" && f.logFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", f.logFormat))
	}
	if f.maxConnsPerSource == 0 || f.maxConnsPerSource < -1 {
		errs = append(errs, fmt.Errorf("--max-conns-per-source %d: want a positive number, or -1 for no cap", f.maxConnsPerSource))
	}
	tlsConf, err := f.tls.config()
	if err != nil {
		errs = append(errs, err)
	}
	oidc, err := f.oidc.config()
	if err != nil {
		errs = append(errs, err)
	}
	var logh slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	if f.logFormat == "json" {
		logh = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	}
	log := slog.New(logh)
	srv, err := server.New(server.Config{
		DataDir: f.dataDir, Listen: f.listen, STUNListen: f.stunListen, Store: f.store,
		PublicURL: f.publicURL, RelayURLs: f.relayURLs, STUNURLs: f.stunURLs,
		RelaySecretFile: f.relaySecretFile, RelayInstanceURL: f.relayInstanceURL,
		SignalKeyFile: f.signalKeyFile, Components: comps, Logger: log,
		MaxConnsPerSource: f.maxConnsPerSource, TLS: tlsConf,
		MetricsListen: f.metricsListen, Pprof: f.pprof, OIDC: oidc, HA: f.ha,
		ClusterURL: f.clusterURL,
	})
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, usageError{err}
	}
	return srv, log, nil
}

// run starts the server, prints what it serves and blocks until ctx ends
// or serving fails, then stops it.
func run(ctx context.Context, f *runFlags, stdout, stderr io.Writer) error {
	srv, log, err := f.server(stderr)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	printBanner(stdout, srv)
	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx))
	case <-srv.Done():
	}
	srv.Stop()
	return srv.Err()
}

// printBanner writes the served URLs and the token location to w.
func printBanner(w io.Writer, srv *server.Server) {
	ep, comps := srv.Endpoints(), srv.Components()
	fmt.Fprintf(w, "petrel-server listening on %s (components: %s)\n", srv.Addr(), comps)
	if sum := srv.TLSSummary(); sum != "" {
		fmt.Fprintf(w, "  TLS:               %s\n", sum)
	}
	if comps.Management {
		fmt.Fprintf(w, "  management (gRPC): %s\n", ep.PublicURL)
		fmt.Fprintf(w, "  REST API:          %s/api\n", ep.PublicURL)
	}
	if comps.Signal {
		fmt.Fprintf(w, "  signal (gRPC):     %s\n", ep.PublicURL)
	}
	if comps.Relay {
		fmt.Fprintf(w, "  relay:             %s (WebSocket %s%s)\n", ep.RelayInstanceURL, ep.PublicURL, relay.Path)
	}
	if comps.Management && len(ep.RelayURLs) > 0 {
		fmt.Fprintf(w, "  relays advertised: %s\n", strings.Join(ep.RelayURLs, " "))
	}
	if comps.STUN {
		fmt.Fprintf(w, "  STUN:              %s (udp %s)\n", strings.Join(ep.STUNURLs, " "), srv.STUNAddr())
	}
	if a := srv.MetricsAddr(); a != nil {
		fmt.Fprintf(w, "  metrics:           http://%s/metrics\n", a)
	}
	if comps.Management {
		if _, err := os.Stat(srv.TokenFile()); err == nil {
			fmt.Fprintf(w, "  admin token:       %s\n", srv.TokenFile())
		} else {
			fmt.Fprintf(w, "  admin token:       none in this data dir (%s is missing)\n", srv.TokenFile())
		}
	}
	if iss := srv.OIDCIssuer(); iss != "" && comps.Management {
		fmt.Fprintf(w, "  sign-in (OpenID):  %s\n", iss)
	}
}
