package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"petrel/internal/cfgfile"
)

// envPrefix starts the environment variable of every `run` setting:
// --data-dir is PETREL_DATA_DIR.
const envPrefix = "PETREL_"

// notSettings are flags of `run` that are no keys of the config file nor
// environment variables.
var notSettings = map[string]bool{"config": true, "help": true}

// withConfig gives `run` its --config flag and PETREL_* variables. Once
// cobra has parsed the command line they fill the flags, whatever flags
// `run` has: the file is the base, the command line overrides it, the
// environment overrides both (package cfgfile). Problems in the file are
// reported together with the flags' own (exit status 2), and validation
// problems name the file line or variable a value came from.
func withConfig(cmd *cobra.Command, f *runFlags) {
	var path string
	cmd.Flags().StringVar(&path, "config", "", "YAML file of settings, keyed by these flags' names (docs/configuration.md)")
	cmd.Long += `

Every flag can also be set in a YAML file given with --config, or in a
PETREL_* environment variable (--data-dir: PETREL_DATA_DIR). The command
line overrides the file; the environment overrides both. See
docs/configuration.md, and 'petrel-server config check FILE'.`
	var origins map[string]cfgfile.Origin
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		res, err := loadConfig(cmd.Flags(), path, os.Environ(), cmd.ErrOrStderr())
		if errors.Is(err, cfgfile.ErrUnreadable) {
			return err
		}
		origins = res.Origins
		if err != nil {
			if _, _, verr := f.server(io.Discard); verr != nil {
				err = errors.Join(err, annotate(verr, origins))
			}
			return usageError{err}
		}
		return nil
	}
	runE := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return annotate(runE(cmd, args), origins)
	}
}

// loadConfig fills the settings in fs from the file at path ("" for none)
// and environ, and writes the warnings to stderr.
func loadConfig(fs *pflag.FlagSet, path string, environ []string, stderr io.Writer) (*cfgfile.Result, error) {
	res, err := cfgfile.Load(fs, path, cfgfile.Options{
		EnvPrefix: envPrefix,
		Environ:   environ,
		Skip:      func(fl *pflag.Flag) bool { return notSettings[fl.Name] },
	})
	if res != nil {
		for _, w := range res.Warnings {
			fmt.Fprintln(stderr, "petrel-server: warning:", w)
		}
	}
	return res, err
}

var flagRef = regexp.MustCompile(`--([a-z0-9][a-z0-9-]*)`)

// annotate adds to each problem in a usage error where the flags it names
// got their values, when that is the file or the environment: "--listen
// "8080": want HOST:PORT (--listen from /etc/petrel/server.yaml:3)".
// Other errors are returned as they are.
func annotate(err error, origins map[string]cfgfile.Origin) error {
	var ue usageError
	if !errors.As(err, &ue) || len(origins) == 0 {
		return err
	}
	var out []error
	for _, e := range flatten(ue.error) {
		var notes []string
		seen := map[string]bool{}
		for _, m := range flagRef.FindAllStringSubmatch(e.Error(), -1) {
			o, ok := origins[m[1]]
			if ok && !seen[m[1]] && (o.Kind == cfgfile.FromFile || o.Kind == cfgfile.FromEnv) {
				notes = append(notes, fmt.Sprintf("--%s from %s", m[1], o))
			}
			seen[m[1]] = true
		}
		if len(notes) > 0 {
			e = fmt.Errorf("%w (%s)", e, strings.Join(notes, ", "))
		}
		out = append(out, e)
	}
	return usageError{errors.Join(out...)}
}

// flatten lists the errors inside (nested) errors.Join results.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if ue, ok := err.(usageError); ok {
		return flatten(ue.error)
	}
	return []error{err}
}
