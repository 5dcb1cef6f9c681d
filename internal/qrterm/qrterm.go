// Package qrterm draws a QR code on a terminal, so a user can open a
// sign-in URL on a phone by pointing its camera at the screen.
//
// The encoding is github.com/skip2/go-qrcode's (error correction level M);
// the drawing is here. Each text line carries two rows of modules with
// the Unicode half blocks ▀ ▄ █ and a space, so modules come out about
// square in a terminal cell.
//
// Colours: a terminal draws a glyph in its foreground colour on its
// background colour, and either may be dark or light depending on the
// theme; drawn in the default colours, the code would be inverted in one
// of them, which many camera apps do not read. So every line sets both
// colours explicitly (SGR 30 black ink on SGR 47 white paper) and resets
// them before its newline: the code reads the same in a light and a dark
// theme, and the quiet zone of four light modules that ISO/IEC 18004 asks
// for is drawn too, whatever surrounds it. The output is therefore meant
// for a terminal; callers print it only when the output is one.
//
// Any package may import it; Render is safe for concurrent use.
package qrterm

import (
	"fmt"
	"io"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

const (
	// QuietZone is the light margin around the code, in modules.
	QuietZone = 4

	setColours   = "\x1b[30;47m" // black foreground on a white background
	resetColours = "\x1b[0m"
)

// Render writes a QR code of text to w, one line per two module rows,
// quiet zone included. It fails when text is too long for a QR code.
func Render(w io.Writer, text string) error {
	m, err := modules(text)
	if err != nil {
		return err
	}
	var b strings.Builder
	for y := 0; y < len(m); y += 2 {
		b.WriteString(setColours)
		for x := range m[y] {
			bottom := y+1 < len(m) && m[y+1][x] // past the last row: light
			b.WriteRune(halfBlock(m[y][x], bottom))
		}
		b.WriteString(resetColours + "\n")
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// modules returns the code's module matrix with the quiet zone: m[y][x]
// is true for a dark module.
func modules(text string) ([][]bool, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("encode QR code: %w", err)
	}
	q.DisableBorder = true // the quiet zone is added here
	sym := q.Bitmap()
	n := len(sym) + 2*QuietZone
	m := make([][]bool, n)
	for y := range m {
		m[y] = make([]bool, n)
		if y >= QuietZone && y < n-QuietZone {
			copy(m[y][QuietZone:], sym[y-QuietZone])
		}
	}
	return m, nil
}

// halfBlock is the glyph for a cell whose upper half shows top and lower
// half bottom (true: dark, drawn in the foreground colour).
func halfBlock(top, bottom bool) rune {
	switch {
	case top && bottom:
		return '█'
	case top:
		return '▀'
	case bottom:
		return '▄'
	}
	return ' '
}
