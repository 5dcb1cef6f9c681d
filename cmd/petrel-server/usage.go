package main

import (
	"github.com/spf13/cobra"

	"petrel/internal/cmdline"
)

// usageError marks bad flags or arguments (exit status 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// ExitCode makes usageError exit with status 2 (see cmdline.ExitCode).
func (usageError) ExitCode() int { return cmdline.ExitUsage }

// exitCode is the exit status for err: 2 for a usage error, else 1.
func exitCode(err error) int { return cmdline.ExitCode(err) }

// enforceUsage makes every misuse of the command tree a usageError: an
// unknown subcommand or flag, a bad flag value, wrong arguments, missing
// required flags, a command group given no subcommand.
func enforceUsage(root *cobra.Command) {
	cmdline.EnforceUsage(root, func(err error) error { return usageError{err} })
}
