package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"petrel/internal/keys"
	"petrel/server"
)

func newAdminTokenCmd() *cobra.Command {
	root := &cobra.Command{Use: "admin-token", Short: "Manage admin API tokens offline"}
	var (
		req server.AdminTokenRequest
		out string
	)
	create := &cobra.Command{
		Use:   "create --data-dir DIR [--store SPEC] [--name NAME] [--account ID] [--out FILE]",
		Short: "Add an admin API token directly in the store (server stopped)",
		Long: `Create adds an admin API token to the account in the store and prints it
(or writes it to --out, mode 0600). It works offline, for a lost admin-token
file: run it with petrel-server stopped (a running server accepts the new
token only after a restart). Existing tokens stay valid.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.DataDir == "" {
				return usageError{errors.New("--data-dir is required")}
			}
			req.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			token, acct, err := server.CreateAdminToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			if out == "" {
				fmt.Fprintln(cmd.OutOrStdout(), token)
			} else {
				if err := keys.WriteFileAtomic(out, []byte(token+"\n"), 0o600); err != nil {
					return fmt.Errorf("write token: %w", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "admin token for account %s written to %s\n", acct, out)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "restart petrel-server if it is running, so that it accepts the new token")
			return nil
		},
	}
	fl := create.Flags()
	fl.StringVar(&req.DataDir, "data-dir", "", "the server's data directory (required)")
	fl.StringVar(&req.Store, "store", "sqlite", "store: sqlite (DATA_DIR/petrel.db), sqlite:///path.db or postgres://DSN")
	fl.StringVar(&req.Name, "name", "recovered", "token name")
	fl.StringVar(&req.Account, "account", "", "account ID (default: the only account)")
	fl.StringVar(&out, "out", "", "write the token to FILE (0600) instead of stdout")
	root.AddCommand(create)
	return root
}
