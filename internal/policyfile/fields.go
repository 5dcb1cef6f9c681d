package policyfile

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"petrel/internal/printable"
)

// fieldMode says how a field compares and prints.
type fieldMode int

const (
	scalarMode fieldMode = iota
	listMode             // ordered list
	setMode              // order does not matter
)

// field is one compared member of an object, or one member of a policy
// rule ("rules[0].ports"), in canonical form.
type field struct {
	name   string // display path
	member string // the request member it belongs to (what an update sends)
	mode   fieldMode
	vals   []string // canonical values compared (a set sorted by them)
	show   []string // how each value prints
}

// ref is a reference in canonical form: a group by its name in the state
// after apply, a peer by its ID (shown by name).
type ref struct{ key, name string }

func scalarField(name, member, v string) field {
	return field{name: name, member: member, vals: []string{v}, show: []string{v}}
}

func boolField(name, member string, b bool) field {
	return scalarField(name, member, fmt.Sprint(b))
}

func stringsField(name, member string, mode fieldMode, vs []string) field {
	refs := make([]ref, len(vs))
	for i, v := range vs {
		refs[i] = ref{key: v, name: v}
	}
	return refsField(name, member, mode, refs)
}

func refsField(name, member string, mode fieldMode, refs []ref) field {
	f := field{name: name, member: member, mode: mode}
	refs = slices.Clone(refs)
	if mode == setMode {
		slices.SortFunc(refs, func(a, b ref) int { return naturalCompare(a.key, b.key) })
		refs = slices.CompactFunc(refs, func(a, b ref) bool { return a.key == b.key })
	}
	for _, r := range refs {
		f.vals = append(f.vals, r.key)
		f.show = append(f.show, r.name)
	}
	return f
}

// naturalCompare orders strings with leading numbers by number first
// (ports: 22 < 80 < 443 < 8000-8080), else as strings.
func naturalCompare(a, b string) int {
	na, ra := leadingNumber(a)
	nb, rb := leadingNumber(b)
	if ra > 0 && rb > 0 && na != nb {
		return cmp.Compare(na, nb)
	}
	return strings.Compare(a, b)
}

// leadingNumber parses the decimal digits s starts with (at most 18).
func leadingNumber(s string) (n int64, digits int) {
	for digits < len(s) && digits < 18 && s[digits] >= '0' && s[digits] <= '9' {
		n = n*10 + int64(s[digits]-'0')
		digits++
	}
	return n, digits
}

// empty reports whether the field holds "" or no values.
func (f *field) empty() bool {
	return len(f.vals) == 0 || f.mode == scalarMode && f.vals[0] == ""
}

// text is the field's value as printed.
func (f *field) text() string {
	if f.mode == scalarMode {
		if f.show[0] == "" {
			return `""`
		}
		return printable.Escape(f.show[0])
	}
	if len(f.show) == 0 {
		return "[]"
	}
	out := make([]string, len(f.show))
	for i, s := range f.show {
		out[i] = printable.Escape(s)
	}
	return strings.Join(out, ", ")
}

// fieldDiff is one field that differs; old or new is nil when the field
// exists on one side only (a rule added or removed).
type fieldDiff struct {
	old, new *field
}

func (d fieldDiff) member() string {
	if d.new != nil {
		return d.new.member
	}
	return d.old.member
}

func (d fieldDiff) String() string {
	switch {
	case d.old == nil:
		return d.new.name + ": + " + d.new.text()
	case d.new == nil:
		return d.old.name + ": - " + d.old.text()
	case d.new.mode == setMode:
		var parts []string
		for i, v := range d.new.vals {
			if !slices.Contains(d.old.vals, v) {
				parts = append(parts, "+"+printable.Escape(d.new.show[i]))
			}
		}
		for i, v := range d.old.vals {
			if !slices.Contains(d.new.vals, v) {
				parts = append(parts, "-"+printable.Escape(d.old.show[i]))
			}
		}
		return d.new.name + ": " + strings.Join(parts, " ")
	}
	return d.new.name + ": " + d.old.text() + " → " + d.new.text()
}

// diffFields compares two objects' fields, in the order of want's.
func diffFields(want, have []field) []fieldDiff {
	var out []fieldDiff
	for i := range want {
		w := &want[i]
		j := slices.IndexFunc(have, func(h field) bool { return h.name == w.name })
		if j < 0 {
			out = append(out, fieldDiff{new: w})
			continue
		}
		if !slices.Equal(w.vals, have[j].vals) {
			out = append(out, fieldDiff{old: &have[j], new: w})
		}
	}
	for i := range have {
		h := &have[i]
		if !slices.ContainsFunc(want, func(w field) bool { return w.name == h.name }) {
			out = append(out, fieldDiff{old: h})
		}
	}
	return out
}
