package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"petrel/internal/policyfile"
)

func newApplyCmd() *cobra.Command {
	var f clientFlags
	var file string
	var dryRun, prune bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE [--dry-run] [--prune]",
		Short: "Make groups, policies, routes and DNS what a declarative file says",
		Long: `Apply reads a YAML or JSON file of groups, policies, routes and DNS
(nameserver groups, zones, settings), keyed by name, compares it with the
live state and prints the difference: + create, ~ update (the fields that
change), - delete. With --dry-run it stops there. Otherwise it applies the
changes in dependency order (groups first, deletes last and in reverse)
and reports each step; the first failure stops it, and it says which steps
were applied and which were not.

A section left out of the file is not managed. Objects on the server that
the file's sections do not list are kept, unless --prune deletes them. The
file refers to groups and peers by name. Problems in the file, including
references to groups or peers that do not exist, are reported before
anything changes (exit status 2). See docs/server-cli.md and
docs/examples/policy.yaml.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{errors.New("-f FILE is required (a policy file; - for stdin)")}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			pf, err := loadPolicyFile(file, cmd.InOrStdin())
			if err != nil {
				return err
			}
			api := restClient{c}
			ls, err := policyfile.FetchLive(cmd.Context(), api)
			if err != nil {
				return err
			}
			p, err := policyfile.MakePlan(pf, ls, prune)
			if err != nil {
				return usageError{fmt.Errorf("%s: nothing was changed:\n%w", file, err)}
			}
			out := cmd.OutOrStdout()
			policyfile.WriteChanges(out, p.Changes(), useColor(out, os.Getenv))
			if kept := p.Kept(); len(kept) > 0 {
				fmt.Fprintf(out, "not in the file, kept (--prune deletes them): %s\n", strings.Join(kept, ", "))
			}
			if len(p.Changes()) == 0 {
				_, err := fmt.Fprintln(out, "no changes")
				return err
			}
			fmt.Fprintln(out, p.Summary(false))
			if dryRun {
				_, err := fmt.Fprintln(out, "dry run: nothing was changed")
				return err
			}
			err = p.Apply(cmd.Context(), api, func(ch policyfile.Change) { fmt.Fprintln(out, ch.Done()) })
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(out, "applied: %s\n", p.Summary(true))
			return err
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&file, "file", "f", "", "the policy file, YAML or JSON (- for stdin) (required)")
	fl.BoolVar(&dryRun, "dry-run", false, "print the changes and stop")
	fl.BoolVar(&prune, "prune", false, "also delete the objects of the file's sections that the file does not list")
	return cmd
}

// loadPolicyFile reads and decodes a policy file ("-" is stdin). Problems
// of its content are usage errors (exit status 2).
func loadPolicyFile(path string, stdin io.Reader) (*policyfile.File, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, policyfile.MaxSize+1))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read policy file: %w", err)
	}
	if len(b) > policyfile.MaxSize {
		return nil, usageError{fmt.Errorf("%s: larger than %d bytes", path, policyfile.MaxSize)}
	}
	pf, err := policyfile.Parse(b)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", path, err)}
	}
	return pf, nil
}

// restClient is policyfile.Client over the admin client's HTTP calls.
type restClient struct{ c *adminClient }

func (r restClient) Get(ctx context.Context, path string, out any) error {
	return r.c.getJSON(ctx, path, out)
}

func (r restClient) Send(ctx context.Context, method, path string, body []byte, contentType string) ([]byte, error) {
	return r.c.send(ctx, method, path, body, contentType)
}

// useColor reports whether w is a terminal and colour is wanted: not with
// NO_COLOR set (https://no-color.org) nor TERM=dumb.
func useColor(w io.Writer, getenv func(string) string) bool {
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
