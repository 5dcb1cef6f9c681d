// Package printable makes strings that came from elsewhere (agent
// hostnames, OS strings, names set through the API) safe to print on a
// terminal: control characters, bidirectional-text overrides and invalid
// UTF-8 are shown escaped instead of being interpreted, so a hostile name
// cannot move the cursor, recolour the screen, forge table rows or reorder
// what the reader sees.
//
// Any package may import it. Functions are pure.
package printable

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape returns s with every unsafe rune written as a Go escape (\x1b,
// \n, \u202e); a string that needs none is returned as is.
func Escape(s string) string {
	if Safe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case unsafeRune(r):
			b.WriteString(escapeRune(r))
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// Safe reports whether s prints as itself (valid UTF-8 without control or
// bidi-override characters).
func Safe(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unsafeRune(r) {
			return false
		}
	}
	return true
}

func escapeRune(r rune) string {
	switch r {
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	}
	if r < 0x100 {
		return fmt.Sprintf(`\x%02x`, r)
	}
	return fmt.Sprintf(`\u%04x`, r)
}

// unsafeRune: C0 and C1 controls, DEL, and the Unicode format characters
// that change the direction or visibility of the text around them.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
