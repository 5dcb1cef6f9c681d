package cfgfile

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseEntries(t *testing.T) {
	src := `# a comment
data-dir: /var/lib/x   # trailing comment
listen: ":443"
relay-url:
  - rels://a.example.net:443
  - rels://b.example.net:443
stun-url: [stun:a.example.net:3478]
acme-email:
max-conns-per-source: 64
public-url: ""
`
	f, err := Parse("s.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Key: "data-dir", Line: 2, Values: []string{"/var/lib/x"}},
		{Key: "listen", Line: 3, Values: []string{":443"}},
		{Key: "relay-url", Line: 4, List: true, Values: []string{"rels://a.example.net:443", "rels://b.example.net:443"}, ItemLines: []int{5, 6}},
		{Key: "stun-url", Line: 7, List: true, Values: []string{"stun:a.example.net:3478"}, ItemLines: []int{7}},
		{Key: "acme-email", Line: 8, Null: true},
		{Key: "max-conns-per-source", Line: 9, Values: []string{"64"}},
		{Key: "public-url", Line: 10, Values: []string{""}},
	}
	if !reflect.DeepEqual(f.Entries, want) {
		t.Fatalf("entries:\n got %+v\nwant %+v", f.Entries, want)
	}
}

func TestParseNothing(t *testing.T) {
	for _, src := range []string{"", "# only comments\n\n# here\n", "---\n", "~\n"} {
		f, err := Parse("s.yaml", []byte(src))
		if err != nil || len(f.Entries) != 0 {
			t.Errorf("%q: %v %v", src, f.Entries, err)
		}
	}
}

func TestParseProblems(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // each a whole problem, "file:line: msg" prefix
	}{
		{"list document", "- a\n- b\n", []string{`s.yaml:1: want a mapping of settings (key: value), not a list`}},
		{"scalar document", "listen :443\n", []string{`s.yaml:1: want a mapping of settings (key: value), not the value "listen :443"`}},
		{"duplicate", "listen: a\ndata-dir: b\nlisten: c\n", []string{`s.yaml:3: duplicate key "listen" (first at line 1)`}},
		{"mapping value", "a: 1\nlisten:\n  host: x\n", []string{`s.yaml:3: key "listen": want a value or a list of values, not a mapping`}},
		{"nested list", "relay-url:\n  - a\n  - [b, c]\n", []string{`s.yaml:3: key "relay-url": item 2 is a list; want a plain value`}},
		{"mapping item", "relay-url:\n  - a: b\n", []string{`s.yaml:2: key "relay-url": item 1 is a mapping; want a plain value`}},
		{"empty item", "relay-url:\n  - a\n  -\n", []string{`s.yaml:3: key "relay-url": item 2 is empty`}},
		{"alias", "a: &x foo\nlisten: *x\n", []string{`s.yaml:2: key "listen": aliases (*x) are not supported`}},
		{"list key", "[a]: b\n", []string{`s.yaml:1: want a setting's name as the key, not a list`}},
		{"syntax", "listen: a\n  data-dir: b\n", []string{`s.yaml:2: bad YAML: mapping values are not allowed in this context`}},
		{"unclosed", "listen: 'x\n", []string{`s.yaml:2: bad YAML:`}},
		{"tab", "listen: a\nrelay-url:\n\t- b\n", []string{`s.yaml:3: bad YAML: indented with a tab`}},
		{"two documents", "listen: a\n---\nlisten: b\n", []string{`s.yaml:2: more than one YAML document`}},
		{"several", "listen: a\nlisten: b\nstore: {x: 1}\nrelay-url: [[a]]\n", []string{
			`s.yaml:2: duplicate key "listen"`, `s.yaml:3: key "store": want a value`, `s.yaml:4: key "relay-url": item 1 is a list`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(tc.src))
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d: %q, want prefix %q", i, lines[i], w)
				}
			}
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("%T is no *Problem", err)
			}
		})
	}
}

// The sound entries survive next to the broken ones.
func TestParseKeepsSoundEntries(t *testing.T) {
	f, err := Parse("s.yaml", []byte("listen: a\nstore: {x: 1}\ndata-dir: d\n"))
	if err == nil || len(f.Entries) != 2 || f.Entries[0].Key != "listen" || f.Entries[1].Key != "data-dir" {
		t.Fatalf("%+v %v", f.Entries, err)
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(filepath.Join(dir, "nope.yaml")); !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := Read(dir); !errors.Is(err, ErrUnreadable) {
		t.Fatalf("a directory: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", MaxFileSize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(big); err == nil || errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "big.yaml: larger than") {
		t.Fatalf("big file: %v", err)
	}
	ok := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(ok, []byte("listen: :1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if f, err := Read(ok); err != nil || f.Name != ok || len(f.Entries) != 1 {
		t.Fatalf("%+v %v", f, err)
	}
}
