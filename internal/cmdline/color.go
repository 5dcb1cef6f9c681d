package cmdline

import (
	"io"
	"os"
)

// ColorEnabled reports whether to colour what is written to w: only when
// w is a terminal, and never with NO_COLOR set to anything non-empty
// (https://no-color.org) or TERM=dumb. getenv is os.Getenv outside tests.
func ColorEnabled(w io.Writer, getenv func(string) string) bool {
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

// isTerminal: a character device that is not the null device (a terminal,
// on every platform the agent builds for, without a terminal library).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// Palette paints text with ANSI SGR codes; the zero value (off) returns
// text unchanged, so callers colour unconditionally and decide once.
type Palette struct{ On bool }

// NewPalette is the palette for output to w (see ColorEnabled).
func NewPalette(w io.Writer) Palette { return Palette{On: ColorEnabled(w, os.Getenv)} }

func (p Palette) paint(code, s string) string {
	if !p.On || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// Green is for good news (connected, direct path, no loss).
func (p Palette) Green(s string) string { return p.paint("32", s) }

// Yellow is for degraded states (relayed, some loss).
func (p Palette) Yellow(s string) string { return p.paint("33", s) }

// Red is for failures.
func (p Palette) Red(s string) string { return p.paint("31", s) }

// Bold is for headings.
func (p Palette) Bold(s string) string { return p.paint("1", s) }
