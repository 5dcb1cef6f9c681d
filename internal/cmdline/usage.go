// Package cmdline holds what Petrel's two command-line programs (petrel and
// petrel-server) share so that they behave alike: exit statuses (2 for a
// misuse of the command line, 1 for a failure while running), the
// `--version` line, and the decision whether to print colour.
//
// Only the cmd/ packages import it. Everything here runs on the goroutine
// that executes the command.
package cmdline

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// Exit statuses of both programs.
const (
	ExitFailure = 1 // the command ran and failed
	ExitUsage   = 2 // bad command, flag, flag value or arguments
)

// ExitCode is the exit status for err: the code of the first error in its
// chain that has an ExitCode method, else ExitFailure (0 for nil).
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return ExitFailure
}

// EnforceUsage makes every misuse of the command tree under root a usage
// error, marked by calling usage (which must return an error whose
// ExitCode is ExitUsage): an unknown subcommand, a command group given no
// subcommand or an unknown one, an unknown flag or a bad flag value, wrong
// arguments, and missing required flags (checked with the arguments, so
// before any PreRun). Call it once the tree is complete, before Execute;
// it adds cobra's `completion` command first so that it is covered too.
func EnforceUsage(root *cobra.Command, usage func(error) error) {
	root.InitDefaultCompletionCmd()
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	enforce(root, usage)
}

func enforce(cmd *cobra.Command, usage func(error) error) {
	for _, sub := range cmd.Commands() {
		enforce(sub, usage)
	}
	if cmd.HasSubCommands() && !cmd.Runnable() {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usage(unknownCommand(c, args[0]))
			}
			return nil
		}
		cmd.RunE = func(c *cobra.Command, _ []string) error {
			return usage(fmt.Errorf("%s needs a command: %s (see %s --help)", c.CommandPath(), subcommandNames(c), c.CommandPath()))
		}
		return
	}
	validate := cmd.Args
	cmd.Args = func(c *cobra.Command, args []string) error {
		if validate != nil {
			if err := validate(c, args); err != nil {
				if ExitCode(err) == ExitUsage {
					return err
				}
				return usage(fmt.Errorf("%w (usage: %s)", err, c.UseLine()))
			}
		} else if c.HasSubCommands() && len(args) > 0 {
			// What cobra's default does for a runnable group, as usage.
			return usage(unknownCommand(c, args[0]))
		}
		if err := c.ValidateRequiredFlags(); err != nil {
			return usage(err)
		}
		if err := c.ValidateFlagGroups(); err != nil {
			return usage(err)
		}
		return nil
	}
}

func unknownCommand(c *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, c.CommandPath())
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	if s := c.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
	}
	return fmt.Errorf("%s (commands: %s)", msg, subcommandNames(c))
}

func subcommandNames(c *cobra.Command) string {
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return strings.Join(names, ", ")
}
