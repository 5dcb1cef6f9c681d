package qrterm

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// glyphs maps each cell to its upper and lower module (true: dark).
var glyphs = map[rune][2]bool{'█': {true, true}, '▀': {true, false}, '▄': {false, true}, ' ': {false, false}}

// parse reads Render's output back into a module matrix (true: dark),
// checking each line's colour codes. rows is the matrix height expected:
// the last line's lower half is beyond it when rows is odd, and must be
// light.
func parse(t *testing.T, out string, rows int) [][]bool {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != (rows+1)/2 {
		t.Fatalf("%d lines for %d rows", len(lines), rows)
	}
	var m [][]bool
	for i, l := range lines {
		body, ok1 := strings.CutPrefix(l, "\x1b[30;47m")
		body, ok2 := strings.CutSuffix(body, "\x1b[0m")
		if !ok1 || !ok2 {
			t.Fatalf("line %d lacks the colour codes: %q", i, l)
		}
		var top, bottom []bool
		for _, r := range body {
			halves, ok := glyphs[r]
			if !ok {
				t.Fatalf("line %d: unexpected rune %q", i, r)
			}
			top, bottom = append(top, halves[0]), append(bottom, halves[1])
		}
		m = append(m, top)
		if len(m) < rows {
			m = append(m, bottom)
		} else if strings.ContainsAny(body, "▄█") {
			t.Fatalf("last line has dark modules below the code: %q", body)
		}
	}
	return m
}

func TestRenderReadsBackAsTheLibraryBitmap(t *testing.T) {
	for _, text := range []string{
		"petrel",
		"https://idp.example.com/device?user_code=WXYZ-2345",
		"https://login.example.org/realms/corp/protocol/openid-connect/auth/device?user_code=ABCD-EFGH&x=" + strings.Repeat("y", 200),
	} {
		q, err := qrcode.New(text, qrcode.Medium)
		if err != nil {
			t.Fatal(err)
		}
		want := q.Bitmap() // with the library's own four-module quiet zone
		var out bytes.Buffer
		if err := Render(&out, text); err != nil {
			t.Fatal(err)
		}
		got := parse(t, out.String(), len(want))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%q: the rendered modules differ from the library's bitmap", text)
		}
		// The quiet zone is light on all four sides.
		n := len(got)
		for i := range n {
			for k := range QuietZone {
				if got[k][i] || got[n-1-k][i] || got[i][k] || got[i][n-1-k] {
					t.Fatalf("%q: dark module in the quiet zone", text)
				}
			}
		}
	}
}

func TestGolden(t *testing.T) {
	var out bytes.Buffer
	if err := Render(&out, "petrel"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "petrel.golden")
	if *update {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("rendering changed (go test -run TestGolden -update to accept):\n%s", out.String())
	}
}

func TestTooLong(t *testing.T) {
	var out bytes.Buffer
	if err := Render(&out, strings.Repeat("x", 3000)); err == nil || out.Len() != 0 {
		t.Fatalf("err %v, wrote %d bytes", err, out.Len())
	}
}
