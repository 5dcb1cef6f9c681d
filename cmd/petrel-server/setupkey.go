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

// setupKeyJSON is the REST shape of a setup key (the fields the CLI shows).
type setupKeyJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Key        string     `json:"key"`
	KeyPrefix  string     `json:"key_prefix"`
	Reusable   bool       `json:"reusable"`
	UsageLimit int        `json:"usage_limit"`
	UsedTimes  int        `json:"used_times"`
	ExpiresAt  *time.Time `json:"expires_at"`
	State      string     `json:"state"`
	AutoGroups []nameJSON `json:"auto_groups"`
	Ephemeral  bool       `json:"ephemeral"`
}

func newSetupKeyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "setup-key", Short: "Manage setup keys (agents register with them)"}
	cmd.AddCommand(newSetupKeyCreateCmd(), newSetupKeyListCmd(), newSetupKeyRevokeCmd())
	return cmd
}

// setupKeyCreateFlags are the flags of `setup-key create`.
type setupKeyCreateFlags struct {
	clientFlags
	name      string
	reusable  bool
	uses      int
	expires   string
	groups    []string
	ephemeral bool
	json      bool
}

// request validates the flags into the REST request body.
func (f *setupKeyCreateFlags) request() (map[string]any, error) {
	if f.uses < 0 {
		return nil, errors.New("--uses must not be negative")
	}
	if f.uses > 1 && !f.reusable {
		return nil, fmt.Errorf("--uses %d needs --reusable (a one-off key is used once)", f.uses)
	}
	if _, err := restapi.ParseDuration(f.expires); err != nil {
		return nil, fmt.Errorf("--expires: %w", err)
	}
	if strings.TrimSpace(f.name) == "" {
		return nil, errors.New("--name must not be empty")
	}
	groups := []string{}
	for _, g := range f.groups {
		if g = strings.TrimSpace(g); g == "" {
			return nil, errors.New("--group must not be empty")
		}
		groups = append(groups, g)
	}
	return map[string]any{
		"name": f.name, "reusable": f.reusable, "usage_limit": f.uses, "expires_in": f.expires,
		"auto_groups": groups, "ephemeral": f.ephemeral,
	}, nil
}

func newSetupKeyCreateCmd() *cobra.Command {
	var f setupKeyCreateFlags
	cmd := &cobra.Command{
		Use:   "create --server URL --token-file FILE [flags]",
		Short: "Create a setup key and print it (shown only once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := f.request()
			if err != nil {
				return usageError{err}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), "POST", "/api/setup-keys", body)
			if err != nil {
				return fmt.Errorf("create setup key: %w", err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var k setupKeyJSON
			if err := json.Unmarshal(raw, &k); err != nil || k.Key == "" {
				return fmt.Errorf("create setup key: unexpected response %.200s", raw)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), k.Key)
			return err
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "setup-key", "key name")
	fl.BoolVar(&f.reusable, "reusable", false, "the key may register several peers")
	fl.IntVar(&f.uses, "uses", 0, "usage limit of a reusable key (0 = unlimited)")
	fl.StringVar(&f.expires, "expires", "", `lifetime such as "24h" or "7d" (default never)`)
	fl.StringArrayVar(&f.groups, "group", nil, "group (name or id) new peers join (repeatable)")
	fl.BoolVar(&f.ephemeral, "ephemeral", false, "peers are removed when offline for a while")
	fl.BoolVar(&f.json, "json", false, "print the created key as JSON")
	return cmd
}

func newSetupKeyListCmd() *cobra.Command {
	return newListCmd("List setup keys", "/api/setup-keys", "setup keys",
		"ID\tNAME\tPREFIX\tSTATE\tUSED\tEXPIRES\tGROUPS",
		func(k setupKeyJSON) string {
			used := fmt.Sprintf("%d", k.UsedTimes)
			if k.UsageLimit > 0 {
				used += fmt.Sprintf("/%d", k.UsageLimit)
			}
			exp := "never"
			if k.ExpiresAt != nil {
				exp = k.ExpiresAt.Local().Format(time.RFC3339)
			}
			return fmt.Sprintf("%s\t%s\t%s…\t%s\t%s\t%s\t%s", k.ID, k.Name, k.KeyPrefix, k.State, used, exp, joinNames(k.AutoGroups))
		})
}

func newSetupKeyRevokeCmd() *cobra.Command {
	return newObjectCmd("revoke ID --server URL --token-file FILE", "Revoke a setup key (final)",
		"PUT", "/api/setup-keys", map[string]bool{"revoked": true}, "revoke setup key", "revoked setup key")
}
