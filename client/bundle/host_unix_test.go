//go:build unix

package bundle

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A FIFO (or device) in place of a file is an error entry, not a hang.
func TestReadTailFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan File, 1)
	go func() { done <- ReadTail("x", p, 100) }()
	f := <-done // a blocking open would hang the test (and time it out)
	if f.Err == nil || !strings.Contains(f.Err.Error(), "not a regular file") {
		t.Fatalf("fifo: %v", f.Err)
	}
}
