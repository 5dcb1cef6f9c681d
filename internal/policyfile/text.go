package policyfile

import (
	"fmt"
	"io"
	"strings"
)

// WriteChanges writes changes as the CLI's diff: "+" create (with every
// field set), "~" update (the fields that change), "-" delete, fields
// indented by four spaces. With color, the op lines get ANSI colours
// (green, yellow, red) and create's fields green.
func WriteChanges(w io.Writer, changes []Change, color bool) {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return "\x1b[" + code + "m" + s + "\x1b[0m"
	}
	for _, c := range changes {
		code := [...]string{"32", "33", "31"}[c.op]
		fmt.Fprintln(w, paint(code, c.op.Symbol()+" "+c.Title()))
		for _, f := range c.Fields() {
			if c.op == Create {
				fmt.Fprintln(w, paint(code, "    "+f.Text))
			} else {
				fmt.Fprintln(w, "    "+f.Text)
			}
		}
	}
}

// Fingerprint identifies what Apply would do: the plan's text plus the IDs
// of the live objects it updates or deletes. Two plans with the same
// fingerprint make the same requests, except for the IDs of the groups
// they create. A caller that showed a plan compares fingerprints to
// refuse applying a different one.
func (p *Plan) Fingerprint() string {
	var b strings.Builder
	WriteChanges(&b, p.changes, false)
	for _, c := range p.changes {
		if c.have != nil {
			fmt.Fprintf(&b, "%s %s id %q\n", c.op.Symbol(), c.have.kind.name, c.have.id)
		}
	}
	return b.String()
}
