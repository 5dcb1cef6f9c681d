package policyfile

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// ApplyError is a step the server refused; the steps before it were
// applied, it and those after it were not.
type ApplyError struct {
	Step    int      // index of the failed change in Changes
	Changes []Change // the plan's changes
	Err     error    // the server's answer
}

// Error says which step failed and lists what was and was not applied.
func (e *ApplyError) Error() string {
	var done, left []string
	for _, d := range e.Changes[:e.Step] {
		done = append(done, d.String())
	}
	for _, d := range e.Changes[e.Step:] {
		left = append(left, d.String())
	}
	msg := fmt.Sprintf("apply stopped at step %d of %d, %s: %v", e.Step+1, len(e.Changes), e.Changes[e.Step], e.Err)
	msg += fmt.Sprintf("\n  applied (%d): %s", len(done), listOrNone(done))
	msg += fmt.Sprintf("\n  not applied (%d): %s", len(left), listOrNone(left))
	return msg
}

func (e *ApplyError) Unwrap() error { return e.Err }

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "; ")
}

// Apply makes the plan's changes in order through c, calling done (if not
// nil) after each. The first failure stops it with an *ApplyError, so the
// state is never changed without saying how. A plan is applied once.
func (p *Plan) Apply(ctx context.Context, c Client, done func(Change)) error {
	for i, ch := range p.changes {
		if err := p.step(ctx, c, ch); err != nil {
			return &ApplyError{Step: i, Changes: p.changes, Err: err}
		}
		if done != nil {
			done(ch)
		}
	}
	return nil
}

// groupID is the ID of a group by its name after apply.
func (p *Plan) groupID(name string) string {
	if id, ok := p.groupIDs[name]; ok {
		return id
	}
	return name // not reached: MakePlan resolved every reference
}

func (p *Plan) step(ctx context.Context, c Client, ch Change) error {
	switch ch.op {
	case Create:
		body, err := json.Marshal(ch.want.body(p.groupID, nil))
		if err != nil {
			return err
		}
		raw, err := c.Send(ctx, "POST", ch.want.kind.path, body, MediaJSON)
		if err != nil {
			return err
		}
		if ch.want.kind == kindGroup {
			var o struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &o); err != nil || o.ID == "" {
				return fmt.Errorf("unexpected response %.200q", raw)
			}
			p.groupIDs[ch.want.label] = o.ID
		}
		return nil
	case Update:
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
		_, err = c.Send(ctx, "PATCH", path, body, MediaMergePatch)
		return err
	}
	_, err := c.Send(ctx, "DELETE", ch.have.kind.path+"/"+url.PathEscape(ch.have.id), nil, "")
	return err
}
