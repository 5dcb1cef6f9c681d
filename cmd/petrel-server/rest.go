package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Media types of request bodies (docs/rest-api.md).
const (
	mediaJSON       = "application/json"
	mediaMergePatch = "application/merge-patch+json"
)

// getJSON GETs path and decodes the answer into out.
func (c *adminClient) getJSON(ctx context.Context, path string, out any) error {
	raw, err := c.send(ctx, "GET", path, nil, "")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode response of GET %s: %w", path, err)
	}
	return nil
}

// object is one REST object as the API returns it, kept as raw JSON (so
// --json prints exactly the server's answer) and decoded for lookups.
type object struct {
	raw    json.RawMessage
	fields map[string]any
}

func (o object) id() string { return o.str("id") }

// str returns the member k when it is a string.
func (o object) str(k string) string {
	s, _ := o.fields[k].(string)
	return s
}

// label names the object in messages: its name field, else its ID.
func (o object) label(nameField string) string {
	if s := o.str(nameField); s != "" {
		return s
	}
	return o.id()
}

func decodeObject(raw []byte) (object, error) {
	o := object{raw: raw}
	if err := json.Unmarshal(raw, &o.fields); err != nil || o.fields == nil {
		return o, fmt.Errorf("unexpected response %.200q", raw)
	}
	return o, nil
}

// listObjects GETs a collection.
func (c *adminClient) listObjects(ctx context.Context, path string) ([]object, error) {
	var items []json.RawMessage
	if err := c.getJSON(ctx, path, &items); err != nil {
		return nil, err
	}
	out := make([]object, 0, len(items))
	for _, raw := range items {
		o, err := decodeObject(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// find returns the object arg names in a collection: the object with that
// ID, else the one whose nameField equals arg exactly, else case-
// insensitively. A name several objects share is an error listing their
// IDs, as the server's own references are.
func (c *adminClient) find(ctx context.Context, def *resourceDef, arg string) (object, error) {
	if def.serverRefs {
		raw, err := c.send(ctx, "GET", def.path+"/"+url.PathEscape(arg), nil, "")
		if err != nil {
			return object{}, err
		}
		return decodeObject(raw)
	}
	items, err := c.listObjects(ctx, def.path)
	if err != nil {
		return object{}, err
	}
	return pick(items, def, arg)
}

// pick is find's matching over a listed collection.
func pick(items []object, def *resourceDef, arg string) (object, error) {
	for _, o := range items {
		if o.id() == arg {
			return o, nil
		}
	}
	for _, fold := range []bool{false, true} {
		var m []object
		for _, o := range items {
			n := o.str(def.nameField)
			if n == arg || fold && strings.EqualFold(n, arg) {
				m = append(m, o)
			}
		}
		switch {
		case len(m) == 1:
			return m[0], nil
		case len(m) > 1:
			ids := make([]string, 0, len(m))
			for _, o := range m {
				ids = append(ids, o.id())
			}
			slices.Sort(ids)
			return object{}, fmt.Errorf("%s %q is ambiguous: %d %s have it (ids %s); use the id",
				def.nameField, arg, len(m), def.plural, strings.Join(ids, ", "))
		}
	}
	return object{}, fmt.Errorf("%s %q not found (give an id or %s)", def.what, arg, def.nameField)
}

// readDocument reads the -f FILE of create and update ("-" is stdin): one
// JSON or YAML object, returned as JSON. An unreadable file is an error
// (exit status 1); a file that is no single object is a usage error.
func readDocument(path string, stdin io.Reader) ([]byte, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 16<<20))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read -f file: %w", err)
	}
	doc, err := documentJSON(b)
	if err != nil {
		return nil, usageError{fmt.Errorf("-f %s: %w", path, err)}
	}
	return doc, nil
}

// documentJSON converts one JSON or YAML object to JSON. JSON is passed on
// as it is, so the server sees (and reports on) exactly what the file says.
func documentJSON(b []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, errors.New("the file is empty; want a JSON or YAML object")
	}
	if trimmed[0] == '{' && json.Valid(trimmed) {
		return trimmed, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON or YAML: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("the file holds more than one YAML document; want one object")
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("want an object (a mapping of members), got %T", v)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("convert YAML to JSON: %w", err)
	}
	return out, nil
}

// printObject prints one object: YAML (which -f accepts back) or, with
// asJSON, the server's JSON.
func printObject(w io.Writer, raw []byte, asJSON bool) error {
	if asJSON {
		return printJSON(w, raw)
	}
	return printYAML(w, raw)
}
