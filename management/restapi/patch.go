package restapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
)

// PATCH takes a JSON merge patch (RFC 7396), applies it to the object's
// GET representation and handles the result exactly as a PUT body, so the
// read-only rules, unknown-field checks and defaults are those of PUT.

// updater is the pair of functions a PATCH needs from a resource.
type updater struct {
	// current returns the GET representation of the object the path names.
	current func(s *server, c *call) (any, error)
	// apply handles a PUT body (already read) and returns the response.
	apply func(s *server, c *call, body []byte) (int, any, error)
}

func (u updater) put(s *server, c *call) (int, any, error) {
	body, err := readBody(c, mediaJSON)
	if err != nil {
		return 0, nil, err
	}
	return u.apply(s, c, body)
}

func (u updater) patch(s *server, c *call) (int, any, error) {
	body, err := readBody(c, mediaMergePatch, mediaJSON)
	if err != nil {
		return 0, nil, err
	}
	patch, err := parseMergePatch(body)
	if err != nil {
		return 0, nil, err
	}
	cur, err := u.current(s, c)
	if err != nil {
		return 0, nil, err
	}
	target, err := toJSONValue(cur)
	if err != nil {
		return 0, nil, err
	}
	merged, err := json.Marshal(mergePatch(target, patch))
	if err != nil {
		return 0, nil, err
	}
	st, v, err := u.apply(s, c, merged)
	return st, v, patchError(err)
}

// parseMergePatch decodes a merge patch body: one JSON object. (RFC 7396
// allows any JSON value, but a non-object would replace the whole resource
// with something that is not an object.)
func parseMergePatch(body []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalidf("request body is empty; a JSON merge patch (an object) is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonError(body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalidf("malformed JSON: unexpected data after the patch at byte offset %d", dec.InputOffset())
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, invalidf("a merge patch must be a JSON object (RFC 7396), got %s", jsonKind(v))
	}
	return obj, nil
}

// mergePatch applies patch to target as RFC 7396 section 2 defines: members
// of an object patch are merged recursively, null removes a member, and any
// other value (arrays included) replaces the target.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// toJSONValue converts v to the generic form encoding/json decodes into.
func toJSONValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	err = dec.Decode(&out)
	return out, err
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "an object"
}

var byteOffset = regexp.MustCompile(` at byte offset \d+`)

// patchError drops byte offsets from errors about the merged document:
// they point into a body the caller never sent.
func patchError(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != 400 {
		return err
	}
	return &apiError{status: ae.status, code: ae.code, msg: byteOffset.ReplaceAllString(ae.msg, "")}
}
