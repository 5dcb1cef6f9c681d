package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"petrel/management/restapi"
)

// newSettingsCmd is `settings show|update`: the account settings (the
// peers' DNS domain and the login expiration of users' peers).
func newSettingsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "settings", Short: "Show or change the account settings (DNS domain, login expiration)"}
	var sf clientFlags
	var asJSON bool
	show := &cobra.Command{
		Use:   "show [--json]",
		Short: "Show the account settings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			raw, err := c.send(cmd.Context(), "GET", "/api/settings", nil, "")
			if err != nil {
				return fmt.Errorf("show settings: %w", err)
			}
			return printObject(cmd.OutOrStdout(), raw, asJSON)
		},
	}
	sf.register(show)
	show.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")

	var uf docFlags
	var domain, expiration string
	update := &cobra.Command{
		Use:   "update [--dns-domain DOMAIN] [--login-expiration 24h|0] | update -f FILE",
		Short: "Change the account settings (PATCH), or send them whole from a file (PUT)",
		Long: "--login-expiration is how long a peer registered by a user stays logged in after the user\n" +
			"last signed in from it (then it needs `petrel login` again); 0 is never. Setup-key peers\n" +
			"never expire.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			set := setFlags(fs)
			switch {
			case uf.file != "" && len(set) > 0:
				return usageError{fmt.Errorf("-f FILE gives the whole settings; drop %s", strings.Join(set, ", "))}
			case uf.file == "" && len(set) == 0:
				return usageError{errors.New("nothing to update: give --dns-domain and/or --login-expiration, or -f FILE")}
			}
			m := members{}
			m.set(fs, "dns-domain", "dns_domain", domain)
			if fs.Changed("login-expiration") {
				d, err := restapi.ParseDuration(expiration)
				if err != nil {
					return usageError{fmt.Errorf("--login-expiration: %w", err)}
				}
				if d%time.Second != 0 {
					return usageError{fmt.Errorf("--login-expiration %s: give whole seconds", expiration)}
				}
				m["login_expiration_seconds"] = int64(d / time.Second)
			}
			c, err := uf.client()
			if err != nil {
				return err
			}
			method, ctype := "PATCH", mediaMergePatch
			var body []byte
			if uf.file != "" {
				if body, err = readDocument(uf.file, cmd.InOrStdin()); err != nil {
					return err
				}
				method, ctype = "PUT", mediaJSON
			} else if body, err = json.Marshal(m); err != nil {
				return fmt.Errorf("encode request: %w", err)
			}
			raw, err := c.send(cmd.Context(), method, "/api/settings", body, ctype)
			if err != nil {
				return fmt.Errorf("update settings: %w", err)
			}
			if uf.asJSON {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "updated settings")
			return printYAML(cmd.OutOrStdout(), raw)
		},
	}
	uf.register(update, "JSON or YAML file with the whole settings (what show prints, edited; - for stdin)")
	update.Flags().StringVar(&domain, "dns-domain", "", "the peers' DNS domain, e.g. mesh.example")
	update.Flags().StringVar(&expiration, "login-expiration", "", `how long a user's peer stays logged in: "24h", "30d", or 0 for never`)
	cmd.AddCommand(show, update)
	return cmd
}
