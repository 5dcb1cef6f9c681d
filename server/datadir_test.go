package server

import (
	"os"
	"path/filepath"
	"testing"
)

// A data dir that others can read (it holds the server key, the admin
// token and the relay secret) is tightened to 0700 at start.
func TestLooseDataDirTightened(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	start(t, loopbackConfig(t, dir))
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %04o after start, want 0700", fi.Mode().Perm())
	}
}
