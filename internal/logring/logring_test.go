package logring

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestRingKeepsTheNewestLinesInOrder(t *testing.T) {
	r := New(3, 0)
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(r, "line %d\n", i)
	}
	lines, dropped := r.Lines()
	if got := strings.Join(lines, ","); got != "line 3,line 4,line 5" || dropped != 2 {
		t.Fatalf("lines %q dropped %d", got, dropped)
	}
	r.Write([]byte("a\nb\n"))
	lines, _ = r.Lines()
	if got := strings.Join(lines, ","); got != "line 5,a,b" {
		t.Fatalf("multi-line write: %q", got)
	}
}

func TestRingCutsLongLines(t *testing.T) {
	r := New(2, 10)
	r.Write([]byte(strings.Repeat("x", 100) + "\n"))
	lines, _ := r.Lines()
	if len(lines) != 1 || !strings.HasPrefix(lines[0], strings.Repeat("x", 10)+" ") || strings.Contains(lines[0], strings.Repeat("x", 11)) {
		t.Fatalf("long line not cut: %q", lines)
	}
}

func TestTeeRecordsAtTheLoggersLevel(t *testing.T) {
	var main bytes.Buffer
	r := New(10, 0)
	l := Tee(slog.New(slog.NewTextHandler(&main, &slog.HandlerOptions{Level: slog.LevelInfo})), r)
	l.Debug("hidden")
	l.Info("shown", "k", "v")
	lines, _ := r.Lines()
	if len(lines) != 1 || !strings.Contains(lines[0], "msg=shown k=v") {
		t.Fatalf("ring: %q", lines)
	}
	if !strings.Contains(main.String(), "msg=shown") || strings.Contains(main.String(), "hidden") {
		t.Fatalf("main log: %q", main.String())
	}
	lj := Tee(slog.New(slog.NewJSONHandler(&main, &slog.HandlerOptions{Level: slog.LevelDebug})), r)
	lj.With("component", "x").Debug("dbg")
	lines, _ = r.Lines()
	if !strings.Contains(lines[len(lines)-1], "msg=dbg component=x") {
		t.Fatalf("debug logger: ring has %q", lines)
	}
}

func TestRingConcurrent(t *testing.T) {
	r := New(100, 0)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				fmt.Fprintf(r, "g%d %d\n", g, i)
			}
		}()
	}
	wg.Wait()
	lines, dropped := r.Lines()
	if len(lines) != 100 || dropped != 3900 {
		t.Fatalf("%d lines, %d dropped", len(lines), dropped)
	}
}

// A cut never splits a character, and whatever is stored is valid UTF-8
// (the lines travel in protobuf strings, which refuse anything else).
func TestRingKeepsValidUTF8(t *testing.T) {
	r := New(4, 4)
	r.Write([]byte("abc\u2192def\n"))
	r.Write([]byte("ok \xff\xfe bytes\n"))
	lines, _ := r.Lines()
	for _, l := range lines {
		if !utf8.ValidString(l) {
			t.Fatalf("invalid UTF-8 stored: %q", l)
		}
	}
	if !strings.HasPrefix(lines[0], "abc ") {
		t.Fatalf("cut line: %q", lines[0])
	}
}
