package restapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
)

// firstNull returns the path ("rules[0].ports", "" for the document itself)
// of the first JSON null in body, in document order. body must be valid
// JSON that encoding/json has already decoded (so its nesting is bounded).
func firstNull(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	path, found, err := walkNull(dec, "")
	return path, found && err == nil
}

func walkNull(dec *json.Decoder, path string) (string, bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", false, err
	}
	switch tok {
	case nil:
		return path, true, nil
	case json.Delim('{'):
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return "", false, err
			}
			key, _ := k.(string)
			if path != "" {
				key = path + "." + key
			}
			if p, found, err := walkNull(dec, key); found || err != nil {
				return p, found, err
			}
		}
		_, err = dec.Token()
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if p, found, err := walkNull(dec, fmt.Sprintf("%s[%d]", path, i)); found || err != nil {
				return p, found, err
			}
		}
		_, err = dec.Token()
	}
	return "", false, err
}

// member is one top-level member of a JSON object with its byte span
// (including the comma that separates it from its neighbour).
type member struct {
	key        string
	value      json.RawMessage
	start, end int
}

// objectMembers returns the members of the JSON object in body in document
// order (duplicates included), or ok false if body is not one valid JSON
// object.
func objectMembers(body []byte) (members []member, ok bool) {
	trimmed := bytes.TrimSpace(body)
	if !json.Valid(body) || len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	for dec.More() {
		start := int(dec.InputOffset())
		k, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		key, _ := k.(string)
		members = append(members, member{key: key, value: v, start: start, end: int(dec.InputOffset())})
	}
	return members, true
}

// blank overwrites the members at the given indexes of objectMembers(body)
// with spaces, so the rest of the body keeps its byte offsets (which error
// messages quote). A member's span starts with the comma before it (none
// for the first), so the first member kept after dropped ones loses its
// comma too.
func blank(body []byte, members []member, drop []int) []byte {
	out := bytes.Clone(body)
	leading := true // every member so far was dropped
	for i, m := range members {
		if slices.Contains(drop, i) {
			for j := m.start; j < m.end; j++ {
				out[j] = ' '
			}
			continue
		}
		if leading && i > 0 {
			if c := bytes.IndexByte(out[m.start:m.end], ','); c >= 0 {
				out[m.start+c] = ' '
			}
		}
		leading = false
	}
	return out
}

// jsonEqual reports whether two JSON texts hold the same value (object
// member order and insignificant space aside).
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// viewMembers returns the top-level members of v's JSON encoding.
func viewMembers(v any) (map[string]json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode view: %w", err)
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode view: %w", err)
	}
	return m, nil
}

// short quotes a JSON value for an error message, cut at 80 bytes.
func short(v json.RawMessage) string {
	if v == nil {
		return "(absent)"
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return string(v)
	}
	if buf.Len() > 80 {
		return string(buf.Bytes()[:77]) + "..."
	}
	return buf.String()
}
