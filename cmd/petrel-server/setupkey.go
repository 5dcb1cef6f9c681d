package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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

// setupKeysDef: `setup-keys`, also reachable as `setup-key` (its first
// name, kept for scripts). Create is written out below: it prints the key.
var setupKeysDef = &resourceDef{
	use: "setup-keys", aliases: []string{"setup-key"}, short: "Manage setup keys (agents register with them)",
	what: "setup key", plural: "setup keys", path: "/api/setup-keys", nameField: "name",
	table: tableOf([]string{"ID", "NAME", "PREFIX", "STATE", "USED", "EXPIRES", "GROUPS"}, func(k setupKeyJSON) []string {
		used := fmt.Sprintf("%d", k.UsedTimes)
		if k.UsageLimit > 0 {
			used += fmt.Sprintf("/%d", k.UsageLimit)
		}
		exp := "never"
		if k.ExpiresAt != nil {
			exp = k.ExpiresAt.Local().Format(time.RFC3339)
		}
		return []string{k.ID, k.Name, k.KeyPrefix + "…", k.State, used, exp, joinNames(k.AutoGroups)}
	}),
	update: func() *editor {
		var revoke bool
		return &editor{
			register: func(fs *pflag.FlagSet) {
				fs.BoolVar(&revoke, "revoke", false, "revoke the key (final; the only change a key takes)")
			},
			body: func(_ context.Context, _ *adminClient, fs *pflag.FlagSet, _ *object) (map[string]any, error) {
				m := members{}
				m.set(fs, "revoke", "revoked", revoke)
				return m, nil
			},
		}
	},
}

func newSetupKeyCmd() *cobra.Command {
	cmd := newResourceCmd(setupKeysDef)
	cmd.AddCommand(newSetupKeyCreateCmd(), newSetupKeyRevokeCmd())
	return cmd
}

// setupKeyCreateFlags are the flags of `setup-key create`.
type setupKeyCreateFlags struct {
	clientFlags
	file      string
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
		Use:   "create [flags] | create -f FILE",
		Short: "Create a setup key and print it (shown only once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var body []byte
			if f.file != "" {
				if set := setFlags(cmd.Flags()); len(set) > 0 {
					return usageError{fmt.Errorf("-f FILE gives the whole setup key; drop %s", strings.Join(set, ", "))}
				}
			} else {
				req, err := f.request()
				if err != nil {
					return usageError{err}
				}
				if body, err = json.Marshal(req); err != nil {
					return fmt.Errorf("encode request: %w", err)
				}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			if f.file != "" {
				if body, err = readDocument(f.file, cmd.InOrStdin()); err != nil {
					return err
				}
			}
			raw, err := c.send(cmd.Context(), "POST", "/api/setup-keys", body, mediaJSON)
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
	fl.StringVarP(&f.file, "file", "f", "", "JSON or YAML file of the key (the API's POST body; - for stdin)")
	return cmd
}

func newSetupKeyRevokeCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke a setup key (final); same as update --revoke",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			k, err := c.find(cmd.Context(), setupKeysDef, args[0])
			if err != nil {
				return fmt.Errorf("revoke setup key: %w", err)
			}
			body := []byte(`{"revoked": true}`)
			if _, err := c.send(cmd.Context(), "PATCH", "/api/setup-keys/"+url.PathEscape(k.id()), body, mediaMergePatch); err != nil {
				return fmt.Errorf("revoke setup key: %w", err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "revoked setup key %s\n", escapeCells(args[0]))
			return err
		},
	}
	f.register(cmd)
	return cmd
}
