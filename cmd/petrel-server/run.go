package main

import (
	"context"
	"log/slog"
	"os"
	ossignal "os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run --data-dir DIR --listen HOST:PORT [flags]",
		Short: "Run the control plane until SIGINT or SIGTERM",
		Long: `Run serves the selected components. gRPC (management, signal), the REST API
(/api) and the relay WebSocket (/relay) share the --listen TCP port; STUN
listens on UDP --stun-listen.

On first start with an empty store it creates the default account and writes
its admin API token to DATA_DIR/admin-token (mode 0600).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config()
			if err != nil {
				return usageError{err}
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: cfg.LogLevel}))
			ctx, stop := ossignal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServer(ctx, cfg, log, cmd)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "", "directory for the SQLite store, admin token and relay secret (required)")
	fl.StringVar(&f.listen, "listen", ":8080", "TCP address for gRPC, REST and relay")
	fl.StringVar(&f.stunListen, "stun-listen", ":3478", "UDP address for STUN")
	fl.StringVar(&f.store, "store", "sqlite", "store: sqlite (DATA_DIR/petrel.db), sqlite:///path.db or postgres://DSN")
	fl.StringVar(&f.publicURL, "public-url", "", "URL agents use for management and signal (default http://<listen host or hostname>:<port>)")
	fl.StringArrayVar(&f.relayURLs, "relay-url", nil, "relay URL advertised to agents, rel:// or rels:// (repeatable; default this relay's instance URL)")
	fl.StringArrayVar(&f.stunURLs, "stun-url", nil, "STUN URL advertised to agents (repeatable; default stun:<public host>:<stun port>)")
	fl.StringVar(&f.relaySecretFile, "relay-secret-file", "", "shared relay HMAC secret, created if absent (default DATA_DIR/relay-secret)")
	fl.StringVar(&f.relayInstanceURL, "relay-instance-url", "", "this relay instance's URL (default rel://<public host>:<public port>)")
	fl.StringVar(&f.components, "components", "management,signal,relay,stun", "components to run")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// runServer starts the server, prints what it serves and blocks until ctx
// ends or serving fails, then stops it.
func runServer(ctx context.Context, cfg *runConfig, log *slog.Logger, cmd *cobra.Command) error {
	srv, err := startServer(ctx, cfg, log)
	if err != nil {
		return err
	}
	srv.printBanner(cmd.OutOrStdout())
	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx))
	case <-srv.Done():
	}
	srv.Stop()
	return srv.Err()
}
