//go:build unix

package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestDatabaseFilesArePrivate(t *testing.T) {
	// A permissive umask must not widen the files either.
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })

	for _, tc := range []struct {
		name     string
		existing bool // an older binary left world-readable files behind
	}{
		{"new database", false},
		{"existing world-readable database", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "petrel.db")
			if tc.existing {
				s, err := Open(context.Background(), path, testLog(t))
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				for _, p := range []string{path, path + "-wal", path + "-shm"} {
					if err := os.WriteFile(p, nil, 0o644); err != nil && !os.IsExist(err) {
						t.Fatal(err)
					}
					if err := os.Chmod(p, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				// Empty -wal/-shm files are valid: SQLite rebuilds them.
			}
			s, err := Open(context.Background(), path, testLog(t))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// Force the server key (the secret) and a write through the WAL.
			if _, err := s.ServerKey(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatalf("%s: %v", filepath.Base(p), err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
				}
			}
		})
	}
}
