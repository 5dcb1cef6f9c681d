package policyfile

import (
	"bytes"
	"strings"
	"testing"
)

func TestParsePolicyFileErrors(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"", "the file is empty"},
		{"# nothing\n", "holds no document"},
		{"- a\n", "line 1: want a mapping"},
		{"groups: []\n---\npolicies: []\n", "more than one YAML document"},
		{"dns:\n  zones:\n", "line 2: dns.zones is null"},
		{"routes:\n  - metric: high\n", `line 2: "high" is not a whole number`},
		{"policies:\n  - rules: {a: 1}\n", "line 2: a mapping is not a list"},
		{"policy: []\n", `line 1: unknown key "policy"`},
		{"groups: [\n", "did not find expected node content"},
	} {
		_, err := Parse([]byte(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.file, err, tc.want)
		}
	}
	pf, err := Parse([]byte("groups: []\ndns:\n  settings: {dns_domain: x.example}\n"))
	if err != nil || pf.Groups == nil || len(*pf.Groups) != 0 || pf.Policies != nil || pf.DNS.Zones != nil {
		t.Fatalf("sections: %+v %v", pf, err)
	}
}

func TestCanonicalValues(t *testing.T) {
	ports, err := canonicalPorts([]Port{"443", " 80 ", "8000-8080", "22-22"})
	if err != nil || strings.Join(ports, ",") != "443,80,8000-8080,22" {
		t.Fatalf("ports: %v %v", ports, err)
	}
	for _, bad := range []Port{"0", "http", "90-80", "70000", "1-"} {
		if _, err := canonicalPorts([]Port{bad}); err == nil {
			t.Errorf("port %q accepted", bad)
		}
	}
	for in, want := range map[string]string{"10.0.0.53": "10.0.0.53:53", "10.0.0.53:5353": "10.0.0.53:5353",
		"2001:db8::53": "[2001:db8::53]:53", "[::ffff:10.0.0.1]:53": "10.0.0.1:53"} {
		if got, err := canonicalNameserver(in); err != nil || got != want {
			t.Errorf("nameserver %q: %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := canonicalNetwork("10.20.0.1/24"); err == nil || !strings.Contains(err.Error(), "did you mean 10.20.0.0/24") {
		t.Errorf("host bits: %v", err)
	}
	if r, err := canonicalRecord(Record{Type: "txt", Value: "v"}); err != nil || r != (Record{"@", "TXT", "v", 300}) {
		t.Errorf("record defaults: %+v %v", r, err)
	}
}

func TestDiffFields(t *testing.T) {
	want := []field{scalarField("metric", "metric", "50"), stringsField("ports", "rules", setMode, []string{"8443", "443"}),
		stringsField("same", "x", setMode, []string{"b", "a"})}
	have := []field{scalarField("metric", "metric", "100"), stringsField("ports", "rules", setMode, []string{"80", "443"}),
		stringsField("same", "x", setMode, []string{"a", "b"}), scalarField("rules[1].name", "rules", "ssh")}
	var got []string
	for _, d := range diffFields(want, have) {
		got = append(got, d.String())
	}
	if strings.Join(got, "\n") != "metric: 100 → 50\nports: +8443 -80\nrules[1].name: - ssh" {
		t.Fatalf("diff:\n%s", strings.Join(got, "\n"))
	}
	if d := diffFields(have, have); len(d) != 0 {
		t.Fatalf("equal fields differ: %v", d)
	}
	// Sets print in natural order; names are escaped.
	f := stringsField("ports", "rules", setMode, []string{"8000-8080", "443", "22", "80"})
	if f.text() != "22, 80, 443, 8000-8080" {
		t.Fatalf("set order: %s", f.text())
	}
	if f := scalarField("name", "name", "x\x1b[2J"); f.text() != `x\x1b[2J` {
		t.Fatalf("not escaped: %s", f.text())
	}
}

// WriteChanges colours the lines only when asked.
func TestWriteChangesColor(t *testing.T) {
	var out bytes.Buffer
	ch := []Change{{op: Delete, have: &item{kind: kindGroup, label: "x"}}}
	WriteChanges(&out, ch, true)
	if out.String() != "\x1b[31m- group x\x1b[0m\n" {
		t.Fatalf("coloured: %q", out.String())
	}
	out.Reset()
	WriteChanges(&out, ch, false)
	if out.String() != "- group x\n" {
		t.Fatalf("plain: %q", out.String())
	}
}
