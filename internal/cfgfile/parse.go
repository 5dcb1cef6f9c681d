package cfgfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds a config file; a settings file is a few kilobytes.
const MaxFileSize = 1 << 20

// File is a parsed config file: its settings in file order. It is only
// syntax: whether a key names a flag, and whether its value fits the
// flag, is decided by Apply.
type File struct {
	Name    string // as given to Read or Parse; used in messages
	Entries []Entry
}

// Entry is one "key: value" of the top-level mapping.
type Entry struct {
	Key  string
	Line int // of the key, 1-based
	// List is set for a YAML sequence (Values are its items); otherwise
	// Values holds the one scalar.
	List   bool
	Values []string
	// ItemLines are the lines of the items of a list.
	ItemLines []int
	// Null is set for a key with no value ("key:", "key: ~"): the key
	// is then left as if absent.
	Null bool
}

// Problem is one thing wrong with the configuration: in a file (File and
// Line set; Line 0 when the problem has no line, such as an unreadable
// file) or in an environment variable (File empty, Key the variable).
type Problem struct {
	File string
	Line int
	Key  string // the key or environment variable concerned; "" if none
	Msg  string // names the key itself where there is one
}

func (p *Problem) Error() string {
	switch {
	case p.File == "":
		return fmt.Sprintf("environment: %s", p.Msg)
	case p.Line == 0:
		return fmt.Sprintf("%s: %s", p.File, p.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
}

// ErrUnreadable wraps the error of a config file that cannot be read (as
// opposed to one that can be read but is wrong).
var ErrUnreadable = errors.New("unreadable config file")

// Read reads and parses the file at path. A file that cannot be read
// yields an error wrapping ErrUnreadable.
func Read(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrUnreadable, path, err)
	}
	if len(data) > MaxFileSize {
		return nil, &Problem{File: path, Msg: fmt.Sprintf("larger than %d bytes; not a config file?", MaxFileSize)}
	}
	return Parse(path, data)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse parses data, the contents of the config file name: a YAML mapping
// of keys to a scalar or a list of scalars. It returns every problem it
// finds (joined *Problem errors) along with the entries that are sound.
// An empty file, or one with only comments, has no entries.
func Parse(name string, data []byte) (*File, error) {
	f := &File{Name: name}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		return f, syntaxProblem(name, data, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return f, &Problem{File: name, Line: extra.Line, Msg: "more than one YAML document (---); want one mapping of settings"}
	case !errors.Is(err, io.EOF):
		return f, syntaxProblem(name, data, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	switch {
	case root.Kind == yaml.ScalarNode && root.Tag == "!!null":
		return f, nil // "---" or "~" alone: no settings
	case root.Kind != yaml.MappingNode:
		return f, &Problem{File: name, Line: root.Line, Msg: fmt.Sprintf("want a mapping of settings (key: value), not %s", kindName(root))}
	}
	var errs []error
	first := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!null" {
			errs = append(errs, &Problem{File: name, Line: k.Line, Msg: fmt.Sprintf("want a setting's name as the key, not %s", kindName(k))})
			continue
		}
		if l, dup := first[k.Value]; dup {
			errs = append(errs, &Problem{File: name, Line: k.Line, Key: k.Value, Msg: fmt.Sprintf("duplicate key %q (first at line %d)", k.Value, l)})
			continue
		}
		first[k.Value] = k.Line
		e, err := entry(name, k, v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.Entries = append(f.Entries, e)
	}
	return f, errors.Join(errs...)
}

// entry converts the value v of key k.
func entry(name string, k, v *yaml.Node) (Entry, error) {
	e := Entry{Key: k.Value, Line: k.Line}
	bad := func(n *yaml.Node, format string, a ...any) (Entry, error) {
		return e, &Problem{File: name, Line: n.Line, Key: k.Value, Msg: fmt.Sprintf("key %q: ", k.Value) + fmt.Sprintf(format, a...)}
	}
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			e.Null = true
			return e, nil
		}
		e.Values = []string{v.Value}
		return e, nil
	case yaml.SequenceNode:
		e.List = true
		for i, it := range v.Content {
			switch {
			case it.Kind == yaml.AliasNode:
				return bad(it, "aliases (*%s) are not supported", it.Value)
			case it.Kind != yaml.ScalarNode:
				return bad(it, "item %d is %s; want a plain value", i+1, kindName(it))
			case it.Tag == "!!null":
				return bad(it, "item %d is empty", i+1)
			}
			e.Values = append(e.Values, it.Value)
			e.ItemLines = append(e.ItemLines, it.Line)
		}
		return e, nil
	case yaml.AliasNode:
		return bad(v, "aliases (*%s) are not supported", v.Value)
	}
	return bad(v, "want a value or a list of values, not %s", kindName(v))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "empty"
}

// syntaxProblem turns a YAML parser error into a Problem with its line.
func syntaxProblem(name string, data []byte, err error) *Problem {
	msg, line := strings.TrimPrefix(err.Error(), "yaml: "), 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	// A tab in the indentation, the most common slip, gets an obscure
	// message and sometimes no line.
	if tab := tabIndented(data); tab > 0 && (line == 0 || tab <= line) {
		return &Problem{File: name, Line: tab, Msg: "bad YAML: indented with a tab; YAML indents with spaces"}
	}
	return &Problem{File: name, Line: line, Msg: "bad YAML: " + msg}
}

// tabIndented returns the first line (1-based) whose indentation holds a
// tab, or 0.
func tabIndented(data []byte) int {
	for i, line := range strings.Split(string(data), "\n") {
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if strings.Contains(indent, "\t") && strings.TrimSpace(line) != "" {
			return i + 1
		}
	}
	return 0
}
