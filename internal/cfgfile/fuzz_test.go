package cfgfile

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse: any bytes give entries or problems, never a panic; lines
// point into the file and keys are unique.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"data-dir: /var/lib/x\nlisten: \":443\"\n",
		"relay-url:\n  - rels://a:443\n  - rels://b:443\nstun-url: [stun:a:3478]\n",
		"listen: a\nlisten: b\n", "- a\n", "a: &x 1\nb: *x\n", "a: {b: c}\n", "\t- x\n", "a: 1\n---\nb: 2\n",
		"? [a]\n: b\n", "a: !!binary aGVsbG8=\n", "<<: *x\n", "a: |\n  multi\n  line\n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("f.yaml", data)
		// YAML breaks lines at \n, \r and \r\n; the parser may point just
		// past the end.
		lines := strings.Count(string(data), "\n") + strings.Count(string(data), "\r") + 2
		seen := map[string]bool{}
		for _, e := range file.Entries {
			if e.Line < 1 || e.Line > lines || seen[e.Key] {
				t.Fatalf("entry %+v (lines %d, seen %v)", e, lines, seen[e.Key])
			}
			seen[e.Key] = true
			if !e.Null && !e.List && len(e.Values) != 1 {
				t.Fatalf("scalar entry %+v", e)
			}
		}
		if err == nil {
			return
		}
		var j interface{ Unwrap() []error }
		probs := []error{err}
		if errors.As(err, &j) {
			probs = j.Unwrap()
		}
		for _, pe := range probs {
			var p *Problem
			if !errors.As(pe, &p) || p.File != "f.yaml" || p.Line < 0 || p.Line > lines || p.Msg == "" {
				t.Fatalf("problem %#v (lines %d)", pe, lines)
			}
		}
	})
}
