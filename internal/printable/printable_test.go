package printable

import "testing"

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alpha", "alpha"},
		{"café-Ωmega 東京", "café-Ωmega 東京"},
		{"evil\x1b[2J\x1b[31mred", `evil\x1b[2J\x1b[31mred`},
		{"row1\nfake-peer\t100.64.0.9", `row1\nfake-peer\t100.64.0.9`},
		{"abc\u202eexe.txt", `abc\u202eexe.txt`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"c1\u0085", `c1\x85`},
		{`back\slash` + "\x00", `back\\slash\x00`},
	} {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("evil\x1b[2J\n\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if out := Escape(s); !Safe(out) {
			t.Fatalf("Escape(%q) = %q is not safe", s, out)
		}
	})
}
