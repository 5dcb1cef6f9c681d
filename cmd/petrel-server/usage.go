package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// enforceUsage makes every misuse of the command tree a usageError (exit
// status 2): an unknown subcommand, a command group given no subcommand,
// and wrong arguments (cobra's own validators return plain errors).
func enforceUsage(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		enforceUsage(sub)
	}
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{unknownCommand(c, args[0])}
			}
			return nil
		}
		cmd.RunE = func(c *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("%s needs a command: %s (see %s --help)", c.CommandPath(), subcommandNames(c), c.CommandPath())}
		}
		return
	}
	if validate := cmd.Args; validate != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			err := validate(c, args)
			var ue usageError
			if err != nil && !errors.As(err, &ue) {
				return usageError{fmt.Errorf("%w (usage: %s)", err, c.UseLine())}
			}
			return err
		}
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
