package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// resourceDef describes one REST collection for its admin command
// (`groups`, `policies`, ...): list, show, create, update, delete.
type resourceDef struct {
	use     string   // command name, plural: "groups"
	aliases []string // "group"
	short   string
	what    string // one object in messages: "group"
	plural  string // "groups"
	path    string // "/api/groups"
	// nameField is the member an argument may name instead of the ID.
	nameField string
	// serverRefs: the API resolves names in {id} itself (groups, peers);
	// else show/update/delete resolve a name through the list.
	serverRefs bool
	// table prints a list answer as a table.
	table func(w io.Writer, raw []byte) error
	// create and update give the flags of those commands; nil create: no
	// create command (peers); nil update: update takes -f only.
	create, update func() *editor
}

// editor is the flags of a create or update command and how they become
// request members.
type editor struct {
	register func(fs *pflag.FlagSet)
	// required are flags create needs unless -f is given.
	required []string
	// body returns the request members the set flags give (only those,
	// fs.Changed). cur is the object being updated (nil on create), for
	// flags that edit a list.
	body func(ctx context.Context, c *adminClient, fs *pflag.FlagSet, cur *object) (map[string]any, error)
}

// newResourceCmd builds the command of def with its subcommands.
func newResourceCmd(def *resourceDef) *cobra.Command {
	cmd := &cobra.Command{Use: def.use, Aliases: def.aliases, Short: def.short}
	cmd.AddCommand(newResListCmd(def), newResShowCmd(def))
	if def.create != nil {
		cmd.AddCommand(newResCreateCmd(def))
	}
	cmd.AddCommand(newResUpdateCmd(def), newResDeleteCmd(def))
	return cmd
}

// argWord is how usage lines name an object argument.
func (def *resourceDef) argWord() string {
	if def.nameField == "" || def.nameField == "id" {
		return "ID"
	}
	return "ID|" + strings.ToUpper(def.nameField)
}

func newResListCmd(def *resourceDef) *cobra.Command {
	var f clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List " + def.plural,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			raw, err := c.send(cmd.Context(), "GET", def.path, nil, "")
			if err != nil {
				return fmt.Errorf("list %s: %w", def.plural, err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			if err := def.table(cmd.OutOrStdout(), raw); err != nil {
				return fmt.Errorf("list %s: %w", def.plural, err)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	return cmd
}

func newResShowCmd(def *resourceDef) *cobra.Command {
	var f clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show " + def.argWord() + " [--json]",
		Short: "Show one " + def.what + " (YAML that update -f accepts back, or JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			o, err := c.find(cmd.Context(), def, args[0])
			if err != nil {
				return fmt.Errorf("show %s: %w", def.what, err)
			}
			return printObject(cmd.OutOrStdout(), o.raw, asJSON)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	return cmd
}

// docFlags are the shared flags of create and update: -f and --json.
type docFlags struct {
	clientFlags
	file   string
	asJSON bool
}

func (f *docFlags) register(cmd *cobra.Command, fileHelp string) {
	f.clientFlags.register(cmd)
	cmd.Flags().StringVarP(&f.file, "file", "f", "", fileHelp)
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print the stored object as JSON")
}

// setFlags lists the flags given on the command line other than the
// shared ones.
func setFlags(fs *pflag.FlagSet) []string {
	var out []string
	fs.Visit(func(fl *pflag.Flag) {
		switch fl.Name {
		case "server", "token-file", "ca-file", "timeout", "file", "json":
		default:
			out = append(out, "--"+fl.Name)
		}
	})
	return out
}

func newResCreateCmd(def *resourceDef) *cobra.Command {
	var f docFlags
	ed := def.create()
	cmd := &cobra.Command{
		Use:   "create [flags] | create -f FILE",
		Short: "Create a " + def.what + " from flags or from a JSON or YAML file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			var body []byte
			if f.file != "" {
				if set := setFlags(fs); len(set) > 0 {
					return usageError{fmt.Errorf("-f FILE gives the whole %s; drop %s", def.what, strings.Join(set, ", "))}
				}
			} else {
				var missing []string
				for _, r := range ed.required {
					if !fs.Changed(r) {
						missing = append(missing, "--"+r)
					}
				}
				if len(missing) > 0 {
					return usageError{fmt.Errorf("%s required (or give -f FILE)", strings.Join(missing, " and "))}
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
			} else {
				members, err := ed.body(cmd.Context(), c, fs, nil)
				if err != nil {
					return err
				}
				if body, err = json.Marshal(members); err != nil {
					return fmt.Errorf("encode request: %w", err)
				}
			}
			raw, err := c.send(cmd.Context(), "POST", def.path, body, mediaJSON)
			if err != nil {
				return fmt.Errorf("create %s: %w", def.what, err)
			}
			return reportStored(cmd.OutOrStdout(), def, "created", raw, f.asJSON)
		},
	}
	f.register(cmd, "JSON or YAML file of the "+def.what+" (the API's POST body; - for stdin)")
	ed.register(cmd.Flags())
	return cmd
}

// reportStored prints the object a create or update returned.
func reportStored(w io.Writer, def *resourceDef, verb string, raw []byte, asJSON bool) error {
	if asJSON {
		return printJSON(w, raw)
	}
	o, err := decodeObject(raw)
	if err != nil {
		return fmt.Errorf("%s %s: %w", verb, def.what, err)
	}
	label := o.label(def.nameField)
	if label != o.id() && o.id() != "" {
		label += " (id " + o.id() + ")"
	}
	_, err = fmt.Fprintf(w, "%s %s %s\n", verb, def.what, escapeCells(label))
	return err
}

func newResUpdateCmd(def *resourceDef) *cobra.Command {
	var f docFlags
	ed := &editor{register: func(*pflag.FlagSet) {}}
	if def.update != nil {
		ed = def.update()
	}
	cmd := &cobra.Command{
		Use:   "update " + def.argWord() + " [flags] | update " + def.argWord() + " -f FILE",
		Short: "Change the members given as flags (PATCH), or replace the " + def.what + " with a file (PUT)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			set := setFlags(fs)
			switch {
			case f.file != "" && len(set) > 0:
				return usageError{fmt.Errorf("-f FILE replaces the whole %s; drop %s", def.what, strings.Join(set, ", "))}
			case f.file == "" && len(set) == 0:
				return usageError{errors.New("nothing to update: give flags for the members to change, or -f FILE")}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			var body []byte
			if f.file != "" {
				if body, err = readDocument(f.file, cmd.InOrStdin()); err != nil {
					return err
				}
			}
			cur, err := c.find(cmd.Context(), def, args[0])
			if err != nil {
				return fmt.Errorf("update %s: %w", def.what, err)
			}
			method, ctype := "PUT", mediaJSON
			if body == nil {
				members, err := ed.body(cmd.Context(), c, fs, &cur)
				if err != nil {
					return err
				}
				if body, err = json.Marshal(members); err != nil {
					return fmt.Errorf("encode request: %w", err)
				}
				method, ctype = "PATCH", mediaMergePatch
			}
			raw, err := c.send(cmd.Context(), method, def.path+"/"+url.PathEscape(cur.id()), body, ctype)
			if err != nil {
				return fmt.Errorf("update %s %s: %w", def.what, escapeCells(args[0]), err)
			}
			return reportStored(cmd.OutOrStdout(), def, "updated", raw, f.asJSON)
		},
	}
	f.register(cmd, "JSON or YAML file with the whole "+def.what+" (what show prints, edited; - for stdin)")
	ed.register(cmd.Flags())
	return cmd
}

func newResDeleteCmd(def *resourceDef) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "delete " + def.argWord() + "...",
		Short: "Delete " + def.plural + " (all are looked up first; the first failure stops)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			objs := make([]object, 0, len(args))
			for _, a := range args {
				o, err := c.find(ctx, def, a)
				if err != nil {
					return fmt.Errorf("delete %s: %w (nothing deleted)", def.what, err)
				}
				objs = append(objs, o)
			}
			for i, o := range objs {
				if _, err := c.send(ctx, "DELETE", def.path+"/"+url.PathEscape(o.id()), nil, ""); err != nil {
					err = fmt.Errorf("delete %s %s: %w", def.what, escapeCells(args[i]), err)
					if len(objs) > 1 {
						err = fmt.Errorf("%w (%d of %d deleted before it; %d not attempted)", err, i, len(objs), len(objs)-i-1)
					}
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %s %s\n", def.what, escapeCells(o.label(def.nameField)))
			}
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
