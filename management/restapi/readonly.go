package restapi

import (
	"encoding/json"
	"slices"
)

// readOnly lists the members of a resource's GET representation that an
// update (PUT, or PATCH after merging) may repeat although they cannot be
// changed through it, so that a GET body can be edited and sent back.
// Members not listed here and not in the request type stay unknown (400).
type readOnly struct {
	// fixed members must equal the stored object's (id, created_at, ...).
	fixed []string
	// derived members are computed from writable ones (a peer's fqdn from
	// its dns_label): they must equal the stored value or the value the
	// update produces, so an edit may leave them stale or bring them up to
	// date.
	derived []string
	// live members report state that changes on its own between a GET and
	// the PUT (connected, last_seen, used_times): they are ignored.
	live []string
}

// edit is an update body with its read-only members checked and removed.
type edit struct {
	// body is the request body with the read-only members blanked out:
	// same length, so decode errors quote the caller's byte offsets.
	body []byte
	// derived holds the derived members the body gave, for checkDerived.
	derived map[string]json.RawMessage
}

// strip checks the read-only members of body against stored, the stored
// object's GET representation, and blanks them out. A fixed member that
// differs is a 400 naming it. A body that is not one valid JSON object is
// returned as it is, for the decoder to report.
func (ro readOnly) strip(body []byte, stored any) (edit, error) {
	e := edit{body: body}
	members, ok := objectMembers(body)
	if !ok {
		return e, nil
	}
	var cur map[string]json.RawMessage
	var drop []int
	for i, m := range members {
		fixed, derived, live := slices.Contains(ro.fixed, m.key), slices.Contains(ro.derived, m.key), slices.Contains(ro.live, m.key)
		if !fixed && !derived && !live {
			continue
		}
		if cur == nil {
			var err error
			if cur, err = viewMembers(stored); err != nil {
				return e, err
			}
		}
		switch {
		case fixed && !jsonEqual(m.value, cur[m.key]):
			if m.key == "id" {
				return e, invalidf("\"id\" is read-only and differs from the object the URL names (id %s); an object's id cannot change", short(cur["id"]))
			}
			return e, invalidf("%q is read-only and differs from the stored value %s; it cannot be changed here", m.key, short(cur[m.key]))
		case derived:
			if e.derived == nil {
				e.derived = map[string]json.RawMessage{}
			}
			e.derived[m.key] = m.value
		}
		drop = append(drop, i)
	}
	if len(drop) > 0 {
		e.body = blank(body, members, drop)
	}
	return e, nil
}

// checkDerived refuses a derived member that matches neither stored (the
// GET representation before the update) nor updated (the representation
// the update produces, before the service stores it).
func (e edit) checkDerived(stored, updated any) error {
	if len(e.derived) == 0 {
		return nil
	}
	before, err := viewMembers(stored)
	if err != nil {
		return err
	}
	after, err := viewMembers(updated)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(e.derived))
	for k := range e.derived {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := e.derived[k]
		if !jsonEqual(v, before[k]) && !jsonEqual(v, after[k]) {
			return invalidf("%q is read-only (derived) and matches neither the stored value %s nor the result of this update %s",
				k, short(before[k]), short(after[k]))
		}
	}
	return nil
}
