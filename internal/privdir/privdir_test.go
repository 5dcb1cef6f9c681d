package privdir

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEnsure(t *testing.T) {
	base := t.TempDir()
	fresh := filepath.Join(base, "a", "b")
	if loose, err := Ensure(fresh); err != nil || loose != 0 {
		t.Fatalf("fresh: %v %v", loose, err)
	}
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != Mode {
		t.Fatalf("fresh mode %v", fi.Mode().Perm())
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	loose, err := Ensure(open)
	if err != nil || loose != 0o777 {
		t.Fatalf("open: loose %v err %v", loose, err)
	}
	if fi, _ := os.Stat(open); fi.Mode().Perm() != Mode {
		t.Fatalf("not tightened: %v", fi.Mode().Perm())
	}
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Ensure(file); err == nil {
		t.Fatal("a file accepted as a directory")
	}
}
