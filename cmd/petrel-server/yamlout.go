package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"
)

// printYAML writes a JSON document as block YAML in the server's member
// order, for `show`. Strings that YAML could read as something else, and
// every string with control or bidi characters (names come from agents),
// are written double-quoted with escapes, so the output is safe on a
// terminal and reads back as the same document (-f FILE).
func printYAML(w io.Writer, raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := orderedValue(dec)
	if err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	var b strings.Builder
	if isEmpty(v) {
		writeScalar(&b, v)
	} else {
		writeYAML(&b, v, 0, false)
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// member is one member of a JSON object, in document order.
type member struct {
	key string
	val any
}

// orderedValue decodes the next JSON value, keeping object member order:
// objects become []member, arrays []any, numbers json.Number.
func orderedValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			arr := []any{}
			for dec.More() {
				v, err := orderedValue(dec)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token()
			return arr, err
		}
		obj := []member{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := orderedValue(dec)
			if err != nil {
				return nil, err
			}
			obj = append(obj, member{key: k.(string), val: v})
		}
		_, err := dec.Token()
		return obj, err
	}
	return tok, nil
}

// writeYAML writes v at the given indentation. With inline, its first
// line continues the current one (after "- ").
func writeYAML(b *strings.Builder, v any, indent int, inline bool) {
	pad := strings.Repeat("  ", indent)
	switch t := v.(type) {
	case []member:
		for i, m := range t {
			if i > 0 || !inline {
				b.WriteString(pad)
			}
			b.WriteString(yamlString(m.key) + ":")
			if isContainer(m.val) && !isEmpty(m.val) {
				b.WriteString("\n")
				writeYAML(b, m.val, indent+1, false)
				continue
			}
			b.WriteString(" ")
			writeScalar(b, m.val)
		}
	case []any:
		for i, e := range t {
			if i > 0 || !inline {
				b.WriteString(pad)
			}
			b.WriteString("- ")
			if isContainer(e) && !isEmpty(e) {
				writeYAML(b, e, indent+1, true)
				continue
			}
			writeScalar(b, e)
		}
	default:
		writeScalar(b, v)
	}
}

func isContainer(v any) bool {
	switch v.(type) {
	case []member, []any:
		return true
	}
	return false
}

func isEmpty(v any) bool {
	switch t := v.(type) {
	case []member:
		return len(t) == 0
	case []any:
		return len(t) == 0
	}
	return false
}

// writeScalar writes a scalar, or an empty mapping or sequence, and ends
// the line.
func writeScalar(b *strings.Builder, v any) {
	switch t := v.(type) {
	case []member:
		b.WriteString("{}")
	case []any:
		b.WriteString("[]")
	case nil:
		b.WriteString("null")
	case bool:
		fmt.Fprint(b, t)
	case json.Number:
		b.WriteString(t.String())
	case string:
		b.WriteString(yamlString(t))
	}
	b.WriteString("\n")
}

// plainSafe matches strings YAML reads back as the same string when
// written plain; yamlWords are the exceptions it would read as booleans
// or null (in YAML 1.1 or 1.2).
var (
	plainSafe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_./@-]*$`)
	yamlWords = map[string]bool{"true": true, "false": true, "null": true, "yes": true, "no": true,
		"on": true, "off": true, "y": true, "n": true}
)

// yamlString writes s plain when that is unambiguous, else double-quoted
// with every quote, backslash and unsafe rune escaped.
func yamlString(s string) string {
	if plainSafe.MatchString(s) && !yamlWords[strings.ToLower(s)] {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0x061c || r == 0x200e || r == 0x200f ||
			r >= 0x2028 && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0xfeff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	b.WriteByte('"')
	return b.String()
}
