package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
)

// apply makes the plan's changes in order, printing each as it is done.
// The first failure stops it; the error lists what was and was not
// applied, so the state is never changed without saying how.
func (p *plan) apply(ctx context.Context, c *adminClient, out io.Writer) error {
	for i, ch := range p.changes {
		if err := p.step(ctx, c, ch); err != nil {
			var done, left []string
			for _, d := range p.changes[:i] {
				done = append(done, d.String())
			}
			for _, d := range p.changes[i+1:] {
				left = append(left, d.String())
			}
			msg := fmt.Sprintf("apply stopped at step %d of %d, %s: %v", i+1, len(p.changes), ch, err)
			msg += fmt.Sprintf("\n  applied (%d): %s", len(done), listOrNone(done))
			msg += fmt.Sprintf("\n  not applied (%d): %s", len(p.changes)-i, listOrNone(append([]string{ch.String()}, left...)))
			return fmt.Errorf("%s", msg)
		}
		fmt.Fprintf(out, "%s\n", pastTense(ch))
	}
	_, err := fmt.Fprintf(out, "applied: %s\n", p.summary(true))
	return err
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "; ")
}

func pastTense(ch change) string {
	switch ch.op {
	case opCreate:
		return "created " + ch.want.title()
	case opUpdate:
		var members []string
		for _, d := range ch.diffs {
			if m := d.member(); !slices.Contains(members, m) {
				members = append(members, m)
			}
		}
		return "updated " + ch.have.title() + " (" + strings.Join(members, ", ") + ")"
	}
	return "deleted " + ch.have.title()
}

// groupID is the ID of a group by its name after apply.
func (p *plan) groupID(name string) string {
	if id, ok := p.groupIDs[name]; ok {
		return id
	}
	return name // not reached: makePlan resolved every reference
}

func (p *plan) step(ctx context.Context, c *adminClient, ch change) error {
	switch ch.op {
	case opCreate:
		body, err := json.Marshal(ch.want.body(p.groupID, nil))
		if err != nil {
			return err
		}
		raw, err := c.send(ctx, "POST", ch.want.kind.path, body, mediaJSON)
		if err != nil {
			return err
		}
		if ch.want.kind == kindGroup {
			o, err := decodeObject(raw)
			if err != nil {
				return err
			}
			p.groupIDs[ch.want.label] = o.id()
		}
		return nil
	case opUpdate:
		full := ch.want.body(p.groupID, ch.have)
		patch := map[string]any{}
		for _, d := range ch.diffs {
			patch[d.member()] = full[d.member()]
		}
		body, err := json.Marshal(patch)
		if err != nil {
			return err
		}
		path := ch.have.kind.path
		if ch.have.kind != kindSettings {
			path += "/" + url.PathEscape(ch.have.id)
		}
		_, err = c.send(ctx, "PATCH", path, body, mediaMergePatch)
		return err
	}
	_, err := c.send(ctx, "DELETE", ch.have.kind.path+"/"+url.PathEscape(ch.have.id), nil, "")
	return err
}
