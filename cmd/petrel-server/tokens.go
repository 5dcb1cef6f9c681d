package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"petrel/management/restapi"
)

// tokenJSON is the REST shape of a personal access token.
type tokenJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	CreatedAt *time.Time `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	Expired   bool       `json:"expired"`
	Token     string     `json:"token"`
}

var tokenTable = tableOf([]string{"NAME", "PREFIX", "CREATED", "EXPIRES", "STATE", "ID"}, func(t tokenJSON) []string {
	exp, state := "never", "valid"
	if t.ExpiresAt != nil {
		exp = t.ExpiresAt.Local().Format(time.RFC3339)
	}
	if t.Expired {
		state = "expired"
	}
	created := ""
	if t.CreatedAt != nil {
		created = t.CreatedAt.Local().Format(time.RFC3339)
	}
	return []string{t.Name, t.Prefix + "…", created, exp, state, t.ID}
})

func newTokensCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tokens", Aliases: []string{"token"},
		Short: "Manage personal access tokens for the REST API and these commands"}
	cmd.AddCommand(newTokenListCmd(), newTokenCreateCmd(), newTokenRevokeCmd())
	return cmd
}

// tokenUserFlag is --user: whose tokens (default: the --token-file's own
// user, "me").
type tokenUserFlag struct{ user string }

func (f *tokenUserFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.user, "user", "me", "whose tokens: me (the token's own user), a user id or an email")
}

// path returns /api/users/{id}/tokens for the --user.
func (f *tokenUserFlag) path(ctx context.Context, c *adminClient) (string, error) {
	u := strings.TrimSpace(f.user)
	if u == "" {
		return "", usageError{fmt.Errorf("--user must not be empty (me, a user id or an email)")}
	}
	if u != "me" {
		o, err := c.findUser(ctx, u)
		if err != nil {
			return "", err
		}
		u = o.id()
	}
	return "/api/users/" + url.PathEscape(u) + "/tokens", nil
}

func newTokenListCmd() *cobra.Command {
	var f clientFlags
	var uf tokenUserFlag
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--user me|ID|EMAIL] [--json]",
		Short: "List a user's access tokens (never the secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			path, err := uf.path(cmd.Context(), c)
			if err != nil {
				return fmt.Errorf("list tokens: %w", err)
			}
			raw, err := c.send(cmd.Context(), "GET", path, nil, "")
			if err != nil {
				return fmt.Errorf("list tokens: %w", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			return tokenTable(cmd.OutOrStdout(), raw)
		},
	}
	f.register(cmd)
	uf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	return cmd
}

func newTokenCreateCmd() *cobra.Command {
	var f clientFlags
	var uf tokenUserFlag
	var name, expires string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create --name NAME [--expires-in 720h] [--user me|ID|EMAIL] [--json]",
		Short: "Create an access token and print it (shown only once: store it now)",
		Long: "The token acts with its user's role. It is printed once on stdout; the server keeps only a\n" +
			"hash. Put it in a file (mode 0600) and pass that as --token-file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(name) == "" {
				return usageError{fmt.Errorf("--name is required (to recognise the token when listing or revoking it)")}
			}
			d, err := restapi.ParseDuration(expires)
			if err != nil {
				return usageError{fmt.Errorf("--expires-in: %w", err)}
			}
			if d%time.Second != 0 {
				return usageError{fmt.Errorf("--expires-in %s: give whole seconds", expires)}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			path, err := uf.path(cmd.Context(), c)
			if err != nil {
				return fmt.Errorf("create token: %w", err)
			}
			body, err := json.Marshal(map[string]any{"name": name, "expires_in": int64(d / time.Second)})
			if err != nil {
				return fmt.Errorf("encode request: %w", err)
			}
			raw, err := c.send(cmd.Context(), "POST", path, body, mediaJSON)
			if err != nil {
				return fmt.Errorf("create token: %w", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var t tokenJSON
			if err := json.Unmarshal(raw, &t); err != nil || t.Token == "" {
				return fmt.Errorf("create token: unexpected response %.200s", raw)
			}
			exp := "never expires"
			if t.ExpiresAt != nil {
				exp = "expires " + t.ExpiresAt.Local().Format(time.RFC3339)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "created access token %s (id %s, %s); store it now, it is not shown again:\n",
				escapeCells(t.Name), t.ID, exp)
			_, err = fmt.Fprintln(cmd.OutOrStdout(), t.Token)
			return err
		},
	}
	f.register(cmd)
	uf.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "token name (required)")
	cmd.Flags().StringVar(&expires, "expires-in", "", `lifetime such as "720h" or "30d" (default never)`)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the created token as JSON")
	return cmd
}

func newTokenRevokeCmd() *cobra.Command {
	var f clientFlags
	var uf tokenUserFlag
	cmd := &cobra.Command{
		Use:   "revoke ID|NAME... [--user me|ID|EMAIL]",
		Short: "Revoke access tokens (they stop working at once)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			path, err := uf.path(ctx, c)
			if err != nil {
				return fmt.Errorf("revoke token: %w", err)
			}
			items, err := c.listObjects(ctx, path)
			if err != nil {
				return fmt.Errorf("revoke token: %w", err)
			}
			def := &resourceDef{what: "access token", plural: "access tokens", nameField: "name"}
			toks := make([]object, 0, len(args))
			for _, a := range args {
				t, err := pick(items, def, a)
				if err != nil {
					return fmt.Errorf("revoke token: %w (nothing revoked)", err)
				}
				toks = append(toks, t)
			}
			for i, t := range toks {
				if _, err := c.send(ctx, "DELETE", path+"/"+url.PathEscape(t.id()), nil, ""); err != nil {
					return fmt.Errorf("revoke token %s: %w (%d of %d revoked before it)", escapeCells(args[i]), err, i, len(toks))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "revoked access token %s\n", escapeCells(t.label("name")))
			}
			return nil
		},
	}
	f.register(cmd)
	uf.register(cmd)
	return cmd
}
