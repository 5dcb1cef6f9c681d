package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// show's YAML reads back as the same document, whatever the strings hold,
// and prints no control or bidi characters.
func TestPrintYAMLRoundTrip(t *testing.T) {
	for _, doc := range []string{
		`{"id": "x", "name": "web", "peers": [], "meta": {}, "n": 3, "f": 1.5, "ok": true, "gone": null}`,
		`{"names": ["true", "no", "on", "null", "~", "123", "1e3", "0x1f", "2026-01-02", "a: b", "#c", "- d", "", " lead", "trail ", "*x", "&y", "!z", "{", "[", "'q'", "\"dq\"", "back\\slash"]}`,
		`{"evil": "a\u001b[2J\nfake row\u202e\u2066\u0085\u007f\ttab", "nested": [{"a": [{"b": []}, [1, [2]]]}, [], {}]}`,
		`[{"id": "1", "rules": [{"sources": [{"id": "g", "name": "All"}], "ports": ["80", "8000-8080"]}]}]`,
		`[]`, `{}`, `"plain"`,
	} {
		var out bytes.Buffer
		if err := printYAML(&out, []byte(doc)); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if strings.ContainsAny(out.String(), "\x1b\u202e\u2066\u0085\x7f\t") {
			t.Errorf("unsafe characters printed:\n%q", out.String())
		}
		var back, want any
		if err := yaml.Unmarshal(out.Bytes(), &back); err != nil {
			t.Fatalf("%s: output is not YAML: %v\n%s", doc, err, out.String())
		}
		_ = json.Unmarshal([]byte(doc), &want)
		b1, _ := json.Marshal(back)
		b2, _ := json.Marshal(want)
		if string(b1) != string(b2) {
			t.Errorf("round trip changed the document:\n%s\n%s\nYAML:\n%s", b2, b1, out.String())
		}
	}
}

// Members keep the server's order.
func TestPrintYAMLOrder(t *testing.T) {
	var out bytes.Buffer
	_ = printYAML(&out, []byte(`{"z": 1, "a": {"k": [1, {"q": 2, "b": 3}], "c": "d"}, "y": "n"}`))
	want := "z: 1\na:\n  k:\n    - 1\n    - q: 2\n      b: 3\n  c: d\n\"y\": \"n\"\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}
