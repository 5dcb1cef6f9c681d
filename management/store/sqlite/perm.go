package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// fileMode is the mode of the database file and its -wal and -shm
// companions: the database holds the server's private key.
const fileMode fs.FileMode = 0o600

// restrictFiles creates the database file with fileMode if it does not exist
// and tightens the database, -wal and -shm files to fileMode if they do.
// SQLite creates the -wal and -shm files with the database file's mode, so a
// private database file keeps its companions private.
func restrictFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stat database file: %w", err)
		}
		if fi.Mode().Perm()&^fileMode == 0 {
			continue
		}
		if err := os.Chmod(p, fileMode); err != nil {
			return fmt.Errorf("restrict database file mode: %w", err)
		}
	}
	return nil
}
