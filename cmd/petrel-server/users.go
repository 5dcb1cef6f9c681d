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
)

// userJSON is the REST shape of a user (the fields the CLI shows).
type userJSON struct {
	ID        string     `json:"id"`
	Email     string     `json:"email"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	Blocked   bool       `json:"blocked"`
	LastLogin *time.Time `json:"last_login"`
	Groups    []nameJSON `json:"groups"`
	Peers     []nameJSON `json:"peers"`
}

// usersDef describes /api/users for the shared helpers (lookup by email,
// messages). Users are created by signing in, so there is no create.
var usersDef = &resourceDef{
	use: "users", aliases: []string{"user"}, short: "List, change (role, blocked) and delete users",
	what: "user", plural: "users", path: "/api/users", nameField: "email",
	table: tableOf([]string{"EMAIL", "NAME", "ROLE", "BLOCKED", "PEERS", "GROUPS", "LAST LOGIN", "ID"}, func(u userJSON) []string {
		last := "never"
		if u.LastLogin != nil {
			last = u.LastLogin.Local().Format(time.RFC3339)
		}
		return []string{u.Email, u.Name, u.Role, yesNo(u.Blocked), fmt.Sprint(len(u.Peers)), joinNames(u.Groups), last, u.ID}
	}),
}

// userArg is how commands name a user: an id, an email, or "me".
const userArg = "ID|EMAIL|me"

func newUsersCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "users", Aliases: []string{"user"},
		Short: "List, change (role, blocked) and delete users (people who sign in through the identity provider)"}
	cmd.AddCommand(newResListCmd(usersDef), newUserShowCmd(), newUserUpdateCmd(), newUserDeleteCmd())
	return cmd
}

// findUser returns the user arg names: "me" (the token's own user), an
// id, or an email (looked up in the user list, which needs an admin).
func (c *adminClient) findUser(ctx context.Context, arg string) (object, error) {
	if strings.Contains(arg, "@") {
		return c.find(ctx, usersDef, arg)
	}
	raw, err := c.send(ctx, "GET", "/api/users/"+url.PathEscape(arg), nil, "")
	if err != nil {
		return object{}, err
	}
	return decodeObject(raw)
}

func newUserShowCmd() *cobra.Command {
	var f clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show " + userArg + " [--json]",
		Short: "Show one user (YAML, or JSON); `show me` is the token's own user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			u, err := c.findUser(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("show user: %w", err)
			}
			return printObject(cmd.OutOrStdout(), u.raw, asJSON)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	return cmd
}

func newUserUpdateCmd() *cobra.Command {
	var f docFlags
	var role string
	var blocked bool
	cmd := &cobra.Command{
		Use:   "update " + userArg + " [--role owner|admin|user] [--blocked=true|false] | update " + userArg + " -f FILE",
		Short: "Change a user's role or block them (PATCH), or send the whole user from a file (PUT)",
		Long: "Blocking a user disables their peers at once (they leave every network map and their agents\n" +
			"must sign in again) and refuses their tokens; --blocked=false enables them again.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			set := setFlags(fs)
			switch {
			case f.file != "" && len(set) > 0:
				return usageError{fmt.Errorf("-f FILE gives the whole user; drop %s", strings.Join(set, ", "))}
			case f.file == "" && len(set) == 0:
				return usageError{errors.New("nothing to update: give --role and/or --blocked, or -f FILE")}
			}
			m := members{}
			m.set(fs, "role", "role", strings.ToLower(strings.TrimSpace(role)))
			m.set(fs, "blocked", "blocked", blocked)
			if r, ok := m["role"]; ok && r != "owner" && r != "admin" && r != "user" {
				return usageError{fmt.Errorf("--role %q: want owner, admin or user", role)}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			method, ctype := "PATCH", mediaMergePatch
			var body []byte
			if f.file != "" {
				if body, err = readDocument(f.file, cmd.InOrStdin()); err != nil {
					return err
				}
				method, ctype = "PUT", mediaJSON
			} else if body, err = json.Marshal(m); err != nil {
				return fmt.Errorf("encode request: %w", err)
			}
			u, err := c.findUser(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("update user: %w", err)
			}
			raw, err := c.send(cmd.Context(), method, "/api/users/"+url.PathEscape(u.id()), body, ctype)
			if err != nil {
				return fmt.Errorf("update user %s: %w", escapeCells(args[0]), err)
			}
			return reportStored(cmd.OutOrStdout(), usersDef, "updated", raw, f.asJSON)
		},
	}
	f.register(cmd, "JSON or YAML file with the whole user (what show prints, edited; - for stdin)")
	cmd.Flags().StringVar(&role, "role", "", "owner, admin or user")
	cmd.Flags().BoolVar(&blocked, "blocked", false, "block the user (--blocked=false unblocks)")
	return cmd
}

func newUserDeleteCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "delete " + userArg + "...",
		Short: "Delete users with their access tokens and peers (all are looked up first; the first failure stops)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			users := make([]object, 0, len(args))
			for _, a := range args {
				u, err := c.findUser(ctx, a)
				if err != nil {
					return fmt.Errorf("delete user: %w (nothing deleted)", err)
				}
				users = append(users, u)
			}
			for i, u := range users {
				if _, err := c.send(ctx, "DELETE", "/api/users/"+url.PathEscape(u.id()), nil, ""); err != nil {
					err = fmt.Errorf("delete user %s: %w", escapeCells(args[i]), err)
					if len(users) > 1 {
						err = fmt.Errorf("%w (%d of %d deleted before it; %d not attempted)", err, i, len(users), len(users)-i-1)
					}
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted user %s\n", escapeCells(u.label("email")))
			}
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
