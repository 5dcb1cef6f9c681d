package main

import (
	"strings"
	"testing"
)

// A peer name with terminal escapes or a newline cannot recolour the
// screen or forge a row of `peers list`.
func TestTableCellsEscaped(t *testing.T) {
	row := "p1\tevil\x1b[2J\nfake  100.64.0.99\t100.64.0.5\tlinux\u202e"
	got := escapeCells(row)
	if strings.ContainsAny(got, "\x1b\n\u202e") {
		t.Fatalf("escaped row still has control characters: %q", got)
	}
	if strings.Count(got, "\t") != 3 {
		t.Fatalf("cell separators changed: %q", got)
	}
	if !strings.Contains(got, `evil\x1b[2J\nfake`) {
		t.Fatalf("name not shown escaped: %q", got)
	}
}
