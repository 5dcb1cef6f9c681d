package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// members collects the request members of a create or update command.
type members map[string]any

// set adds key = v when flag was given.
func (m members) set(fs *pflag.FlagSet, flag, key string, v any) {
	if fs.Changed(flag) {
		m[key] = v
	}
}

// list adds key = vs (never null) when flag was given; an empty value
// ("--peer ”") clears the list.
func (m members) list(fs *pflag.FlagSet, flag, key string, vs []string) error {
	if !fs.Changed(flag) {
		return nil
	}
	out := []string{}
	for _, v := range vs {
		v = strings.TrimSpace(v)
		if v == "" {
			if len(vs) == 1 {
				break
			}
			return usageError{fmt.Errorf("--%s: empty value (a single --%s '' clears the list)", flag, flag)}
		}
		out = append(out, v)
	}
	m[key] = out
	return nil
}

// refIDs returns the IDs of a member of cur holding references
// ([{"id", "name"}, ...]).
func refIDs(cur *object, key string) []string {
	arr, _ := cur.fields[key].([]any)
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		if r, ok := e.(map[string]any); ok {
			if id, _ := r["id"].(string); id != "" {
				out = append(out, id)
			}
		}
	}
	return out
}

// editList applies --add-X and --remove-X to the IDs of cur's member key.
// Added entries are sent as given (the server resolves names); removed
// ones are resolved to IDs by resolve.
func editList(ids, add, remove []string, resolve func(string) (string, error)) ([]string, error) {
	out := slices.Clone(ids)
	for _, r := range remove {
		id, err := resolve(r)
		if err != nil {
			return nil, err
		}
		i := slices.Index(out, id)
		if i < 0 {
			return nil, usageError{fmt.Errorf("--remove: %q is not in the list", r)}
		}
		out = slices.Delete(out, i, i+1)
	}
	for _, a := range add {
		if a = strings.TrimSpace(a); a == "" {
			return nil, usageError{fmt.Errorf("--add: empty value")}
		}
		out = append(out, a)
	}
	return out, nil
}
