package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// SetupKeyEnv names the environment variable that may hold the setup key.
const SetupKeyEnv = "PETREL_SETUP_KEY"

// maxSetupKeyFile bounds what --setup-key-file reads.
const maxSetupKeyFile = 4096

// setupKeyFlags are the three ways to give a setup key. A key on the
// command line is visible to every user in the process list for as long as
// the process runs (all of `up --foreground`), so it earns a warning.
type setupKeyFlags struct {
	key, file string
}

func (s *setupKeyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.key, "setup-key", "",
		"setup key (needed the first time; visible in the process list: prefer --setup-key-file or "+SetupKeyEnv+")")
	cmd.Flags().StringVar(&s.file, "setup-key-file", "", "file holding the setup key (needed the first time)")
}

// resolve returns the setup key ("" when none is given), warning on stderr
// when it came from the command line.
func (s *setupKeyFlags) resolve(stderr io.Writer) (string, error) {
	env := os.Getenv(SetupKeyEnv)
	switch {
	case s.key != "" && s.file != "":
		return "", &exitError{2, errors.New("give the setup key once: --setup-key or --setup-key-file, not both")}
	case s.file != "":
		return readSetupKeyFile(s.file)
	case s.key != "":
		fmt.Fprintf(stderr, "warning: a setup key on the command line is visible to other users (ps); "+
			"use --setup-key-file or %s instead\n", SetupKeyEnv)
		return strings.TrimSpace(s.key), nil
	default:
		return strings.TrimSpace(env), nil
	}
}

func readSetupKeyFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", &exitError{2, fmt.Errorf("--setup-key-file: %w", err)}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSetupKeyFile+1))
	if err != nil {
		return "", &exitError{2, fmt.Errorf("--setup-key-file %s: %w", path, err)}
	}
	if len(b) > maxSetupKeyFile {
		return "", &exitError{2, fmt.Errorf("--setup-key-file %s: larger than %d bytes; is it the right file?", path, maxSetupKeyFile)}
	}
	k := strings.TrimSpace(string(b))
	if k == "" || strings.ContainsAny(k, "\n\r") {
		return "", &exitError{2, fmt.Errorf("--setup-key-file %s: want exactly one line holding the key", path)}
	}
	return k, nil
}
