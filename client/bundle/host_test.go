package bundle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadTail(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "log")
	os.WriteFile(p, []byte("aaaa\nbbbb\ncccc\n"), 0o600)
	if f := ReadTail("x", p, 100); f.Err != nil || string(f.Data) != "aaaa\nbbbb\ncccc\n" {
		t.Fatalf("whole file: %q %v", f.Data, f.Err)
	}
	// The window "bbbb\ncccc\n" starts right after a newline: keep bbbb.
	if f := ReadTail("x", p, 10); f.Err != nil || !strings.HasSuffix(string(f.Data), ")\nbbbb\ncccc\n") {
		t.Fatalf("window on a line boundary: %q %v", f.Data, f.Err)
	}
	// Mid-line window: start at the next whole line.
	if f := ReadTail("x", p, 8); f.Err != nil || !strings.HasSuffix(string(f.Data), ")\ncccc\n") {
		t.Fatalf("mid-line window: %q %v", f.Data, f.Err)
	}
	if f := ReadTail("x", filepath.Join(dir, "none"), 8); !os.IsNotExist(f.Err) {
		t.Fatalf("missing file: %v", f.Err)
	}
}
