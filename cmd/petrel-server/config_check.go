package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"petrel/internal/cfgfile"
)

func newConfigCmd() *cobra.Command {
	root := &cobra.Command{Use: "config", Short: "Check a configuration file"}
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Check a config file (with PETREL_* variables) as run would, starting nothing",
		Long: `Check loads FILE and the PETREL_* environment variables as 'run --config
FILE' would, and validates the result the way run does before it starts,
without opening the store, binding ports or touching the data directory.
It prints "FILE: ok" and the settings that are not at their defaults, with
where each comes from (secrets in URLs masked), or every problem found
(exit status 2).`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("config check takes one FILE, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return checkConfig(args[0], os.Environ(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	root.AddCommand(check)
	return root
}

// checkConfig is `config check`: it fills a fresh `run` command's flags
// from the file and environ and validates them with runFlags.server,
// which has no side effects (server.New only checks the config).
func checkConfig(path string, environ []string, stdout, stderr io.Writer) error {
	run, f := newRunCmdFlags()
	res, err := loadConfig(run.Flags(), path, environ, stderr)
	if errors.Is(err, cfgfile.ErrUnreadable) {
		return err
	}
	if _, _, verr := f.server(io.Discard); verr != nil {
		err = errors.Join(err, annotate(verr, res.Origins))
	}
	if err != nil {
		return usageError{err}
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	printSettings(stdout, run.Flags(), res.Origins)
	return nil
}

// printSettings lists the settings not at their defaults, with their
// sources; URLs have their passwords masked.
func printSettings(w io.Writer, fs *pflag.FlagSet, origins map[string]cfgfile.Origin) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	n := 0
	fs.VisitAll(func(fl *pflag.Flag) {
		o, ok := origins[fl.Name]
		if !ok || o.Kind == cfgfile.Default {
			return
		}
		var vals []string
		if sv, ok := fl.Value.(pflag.SliceValue); ok {
			vals = sv.GetSlice()
		} else {
			vals = []string{fl.Value.String()}
		}
		for i, v := range vals {
			vals[i] = redact(v)
		}
		fmt.Fprintf(tw, "  %s:\t%s\t(%s)\n", fl.Name, strings.Join(vals, ", "), o)
		n++
	})
	_ = tw.Flush()
	if n == 0 {
		fmt.Fprintln(w, "  every setting at its default")
	} else {
		fmt.Fprintln(w, "  (the other settings at their defaults)")
	}
}

// redact masks the secrets a setting's value may hold: the password in
// a URL (a postgres:// store DSN) and query parameters such as
// ?password=. It works on the text, not url.Parse, so that a value too
// odd to parse (a password with '#' or '/') is masked all the same; in
// doubt it masks more.
func redact(v string) string {
	scheme, rest, ok := strings.Cut(v, "://")
	if !ok {
		return v
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if user, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
			rest = user + ":xxxxx" + rest[at:]
		}
	}
	if base, query, ok := strings.Cut(rest, "?"); ok {
		params := strings.Split(query, "&")
		for i, p := range params {
			k, _, _ := strings.Cut(p, "=")
			if lk := strings.ToLower(k); strings.Contains(lk, "password") || strings.Contains(lk, "secret") || strings.Contains(lk, "token") {
				params[i] = k + "=xxxxx"
			}
		}
		rest = base + "?" + strings.Join(params, "&")
	}
	return scheme + "://" + rest
}
