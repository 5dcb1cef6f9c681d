// Package logring keeps a process's most recent log lines in memory, so a
// debug bundle can include them even when the logs themselves went to the
// system journal or a terminal nobody kept.
package logring

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"unicode/utf8"
)

// Defaults of New: at most 2,000 lines of at most 1 KiB each (2 MiB at
// worst, far less in practice; half the daemon API's 4 MiB message limit).
const (
	DefaultLines   = 2000
	DefaultLineLen = 1024
)

// Ring is a bounded FIFO of log lines; it is an io.Writer that takes one
// or more whole lines per Write (slog's handlers write one record per
// call). Safe for concurrent use.
type Ring struct {
	mu      sync.Mutex
	lines   []string
	next    int  // where the next line goes once full
	full    bool // lines has wrapped
	lineLen int
	dropped uint64 // lines pushed out
}

// New returns a ring of at most n lines, each cut at lineLen bytes.
func New(n, lineLen int) *Ring {
	if n <= 0 {
		n = DefaultLines
	}
	if lineLen <= 0 {
		lineLen = DefaultLineLen
	}
	return &Ring{lines: make([]string, 0, n), lineLen: lineLen}
}

// Write stores each line of p. It never fails.
func (r *Ring) Write(p []byte) (int, error) {
	n := len(p)
	p = bytes.TrimRight(p, "\n")
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, p = p[:i], p[i+1:]
		} else {
			p = nil
		}
		if len(line) > r.lineLen {
			n := r.lineLen
			for n > 0 && !utf8.RuneStart(line[n]) {
				n-- // never split a character
			}
			line = append(line[:n:n], " …(cut)"...)
		}
		// Valid UTF-8 always: the lines travel in protobuf strings.
		r.push(strings.ToValidUTF8(string(line), "\uFFFD"))
	}
	return n, nil
}

func (r *Ring) push(s string) {
	if !r.full && len(r.lines) < cap(r.lines) {
		r.lines = append(r.lines, s)
		return
	}
	r.full = true
	r.lines[r.next] = s
	r.next = (r.next + 1) % len(r.lines)
	r.dropped++
}

// Lines returns the stored lines, oldest first, and how many older lines
// were pushed out.
func (r *Ring) Lines() (lines []string, dropped uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.lines))
	if r.full {
		out = append(out, r.lines[r.next:]...)
		out = append(out, r.lines[:r.next]...)
	} else {
		out = append(out, r.lines...)
	}
	return out, r.dropped
}

// Tee returns a logger that writes to l and, in text form, to r: every
// record l would log (the ring records at l's lowest enabled level).
func Tee(l *slog.Logger, r *Ring) *slog.Logger {
	level := slog.LevelError + 4
	for _, lv := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		if l.Enabled(context.Background(), lv) {
			level = lv
			break
		}
	}
	return slog.New(slog.NewMultiHandler(l.Handler(), slog.NewTextHandler(r, &slog.HandlerOptions{Level: level})))
}
