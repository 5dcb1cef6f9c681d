package policyfile

import (
	"fmt"
	"slices"
	"strings"

	"petrel/internal/printable"
)

// Op is what a Change does.
type Op int

// The ops, in the order a plan's summary counts them.
const (
	Create Op = iota
	Update
	Delete
)

// Symbol is the op's mark in a plan: "+", "~" or "-".
func (o Op) Symbol() string { return [...]string{"+", "~", "-"}[o] }

func (o Op) String() string { return [...]string{"create", "update", "delete"}[o] }

// Change is one step of a plan.
type Change struct {
	op    Op
	want  *item // create, update
	have  *item // update, delete
	diffs []fieldDiff
}

// Op is what the change does.
func (c Change) Op() Op { return c.op }

func (c Change) obj() *item {
	if c.have != nil {
		return c.have
	}
	return c.want
}

// Kind is the kind of object changed: "group", "policy", "route",
// "nameserver group", "zone" or "dns settings".
func (c Change) Kind() string { return c.obj().kind.name }

// Name names the object within its kind (its live name for an update), with
// control characters escaped; "" for the DNS settings.
func (c Change) Name() string { return printable.Escape(c.obj().label) }

// Title is the kind and the name: "group laptops".
func (c Change) Title() string { return c.obj().title() }

// String is "create group laptops".
func (c Change) String() string { return c.op.String() + " " + c.Title() }

// Done is the past tense once applied: "created group laptops",
// "updated route 10.0.0.0/8 via gw (metric)" with the request members an
// update sends.
func (c Change) Done() string {
	switch c.op {
	case Create:
		return "created " + c.Title()
	case Update:
		var members []string
		for _, d := range c.diffs {
			if m := d.member(); !slices.Contains(members, m) {
				members = append(members, m)
			}
		}
		return "updated " + c.Title() + " (" + strings.Join(members, ", ") + ")"
	}
	return "deleted " + c.Title()
}

// FieldDiff is one field of a change as shown. Values are as printed
// (control characters escaped, lists comma-separated); Old or New is ""
// when the field exists on that side only, such as a rule added or
// removed (an empty value prints as `""` or []).
type FieldDiff struct {
	Field    string // "metric", "rules[0].ports"
	Old, New string
	// Text is the plan's line: "metric: 100 → 50", "ports: +8443 -80",
	// "name: laptops" (a create's field).
	Text string
}

// Fields are the fields of a change: every field set for a create, the
// fields that differ for an update, none for a delete.
func (c Change) Fields() []FieldDiff {
	var out []FieldDiff
	switch c.op {
	case Create:
		for i := range c.want.fields {
			f := &c.want.fields[i]
			if !f.empty() {
				out = append(out, FieldDiff{Field: f.name, New: f.text(), Text: f.name + ": " + f.text()})
			}
		}
	case Update:
		for _, d := range c.diffs {
			fd := FieldDiff{Text: d.String()}
			if d.old != nil {
				fd.Field, fd.Old = d.old.name, d.old.text()
			}
			if d.new != nil {
				fd.Field, fd.New = d.new.name, d.new.text()
			}
			out = append(out, fd)
		}
	}
	return out
}

// Plan is what Apply does, in order.
type Plan struct {
	changes []Change
	kept    []*item // not in the file, not pruned
	// groupIDs maps the names of groups after apply to their IDs; Apply
	// adds the groups it creates.
	groupIDs map[string]string
}

// Changes are the plan's steps in the order Apply makes them: creates and
// updates in dependency order (groups first), then deletes in reverse.
func (p *Plan) Changes() []Change { return p.changes }

// Kept are the titles of the live objects of the file's sections that the
// file does not list and the plan keeps (it was made without prune).
func (p *Plan) Kept() []string {
	titles := make([]string, 0, len(p.kept))
	for _, it := range p.kept {
		titles = append(titles, it.title())
	}
	return titles
}

// Summary counts the changes: "2 to create, ..." or, done, "2 created, ...".
func (p *Plan) Summary(done bool) string {
	var n [3]int
	for _, c := range p.changes {
		n[c.op]++
	}
	if done {
		return fmt.Sprintf("%d created, %d updated, %d deleted", n[Create], n[Update], n[Delete])
	}
	return fmt.Sprintf("%d to create, %d to update, %d to delete", n[Create], n[Update], n[Delete])
}

// MakePlan compares the file with the live state; prune deletes the live
// objects of the file's sections that it does not list. Every problem of
// the file is reported (as Problems); then nothing may be changed.
func MakePlan(pf *File, ls *Live, prune bool) (*Plan, error) {
	n := newNames(ls, pf, prune)
	want, have, errs := collect(pf, ls, n)
	p := &Plan{groupIDs: n.liveID}
	var deletes []Change
	for _, k := range applyOrder {
		w, managed := want[k]
		if !managed {
			continue
		}
		live := byKey(have[k])
		seen := map[string]int{}
		for i, it := range w {
			if j, dup := seen[it.key]; dup {
				errs = append(errs, fmt.Errorf("%s %q is listed twice (entries %d and %d of its section)", k.name, it.label, j, i))
				continue
			}
			seen[it.key] = i
			switch h := live[it.key]; {
			case len(h) > 1:
				errs = append(errs, fmt.Errorf("%s %q: %d of them exist on the server (ids %s); delete or rename all but one first",
					k.name, it.label, len(h), liveIDs(h)))
			case len(h) == 0:
				p.changes = append(p.changes, Change{op: Create, want: it})
			default:
				if err := compare(p, it, h[0]); err != nil {
					errs = append(errs, err)
				}
			}
		}
		var gone []Change
		for _, h := range have[k] {
			if _, listed := seen[h.key]; listed || h.implicit || k == kindSettings {
				continue
			}
			if !prune {
				p.kept = append(p.kept, h)
				continue
			}
			gone = append(gone, Change{op: Delete, have: h})
		}
		deletes = append(gone, deletes...)
	}
	errs = append(errs, checkPrunedGroups(pf, ls, deletes)...)
	if len(errs) > 0 {
		return nil, Problems(errs)
	}
	p.changes = append(p.changes, deletes...)
	return p, nil
}

// compare adds the update of have to want, if they differ.
func compare(p *Plan, want, have *item) error {
	if have.implicit && want.label != have.label {
		return fmt.Errorf("group %q: the All group cannot be renamed", want.label)
	}
	hf := have.fields
	if want.kind == kindGroup && !slices.ContainsFunc(want.fields, func(f field) bool { return f.name == "peers" }) {
		// Membership not managed by the file.
		hf = slices.DeleteFunc(slices.Clone(hf), func(f field) bool { return f.name == "peers" })
	}
	if d := diffFields(want.fields, hf); len(d) > 0 {
		p.changes = append(p.changes, Change{op: Update, want: want, have: have, diffs: d})
	}
	return nil
}
