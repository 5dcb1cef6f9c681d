// Package privdir creates and checks the private directories that hold
// keys and secrets (the agent's state dir, the server's data dir): mode
// 0700, tightened when an existing directory is looser, an error when it
// cannot be.
//
// Any package may import it. Functions are safe for concurrent use.
package privdir

import (
	"fmt"
	"io/fs"
	"os"
)

// Mode is the mode of a private directory.
const Mode fs.FileMode = 0o700

// Ensure creates dir (and its parents) with Mode if needed. An existing
// directory that others can read, write or enter is tightened to Mode;
// loose is its previous mode when that happened (0 otherwise), for the
// caller to log.
func Ensure(dir string) (loose fs.FileMode, err error) {
	if err := os.MkdirAll(dir, Mode); err != nil {
		return 0, fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return 0, fmt.Errorf("check %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return 0, fmt.Errorf("%s is not a directory", dir)
	}
	perm := fi.Mode().Perm()
	if perm&0o077 == 0 {
		return 0, nil
	}
	if err := os.Chmod(dir, Mode); err != nil {
		return 0, fmt.Errorf("%s is mode %04o (open to other users) and cannot be tightened to %04o: %w", dir, perm, Mode, err)
	}
	return perm, nil
}
