package identity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"petrel/internal/printable"
)

// Limits on what a token may carry. Group names follow Petrel's own rule
// for names (management: 200 bytes, no control characters).
const (
	MaxTokenBytes  = 64 << 10
	maxSubject     = 255 // OpenID Connect Core 1.0, section 2
	maxEmail       = 320
	maxName        = 200
	maxGroupName   = 200
	MaxGroups      = 1000
	maxNonce       = 512
	maxUnixSeconds = 1 << 40
)

// claims are the claims go-oidc does not parse for us.
type claims struct {
	notBefore     time.Time // zero if absent
	azp           string
	email         string
	emailVerified bool
	name          string
	groups        []string // nil unless a groups claim is configured
}

// parseClaims reads the user claims of a (verified) payload. groupsClaim
// "" means groups are not read.
func parseClaims(payload []byte, groupsClaim string) (claims, error) {
	var c claims
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		return c, fmt.Errorf("%w: payload is not a JSON object: %v", ErrClaims, err)
	}
	var err error
	if c.notBefore, err = numericDate(raw, "nbf"); err != nil {
		return c, err
	}
	if c.azp, _, err = str(raw, "azp"); err != nil {
		return c, err
	}
	if c.email, err = email(raw); err != nil {
		return c, err
	}
	if c.emailVerified, err = boolish(raw, "email_verified"); err != nil {
		return c, err
	}
	if c.name, _, err = str(raw, "name"); err != nil {
		return c, err
	}
	c.name = displayName(c.name)
	if groupsClaim != "" {
		if c.groups, err = groups(raw, groupsClaim); err != nil {
			return c, err
		}
	}
	return c, nil
}

// value decodes claim k; ok is false when it is absent or null.
func value(raw map[string]json.RawMessage, k string) (v any, ok bool) {
	r, present := raw[k]
	if !present {
		return nil, false
	}
	d := json.NewDecoder(bytes.NewReader(r))
	d.UseNumber()
	if d.Decode(&v) != nil || v == nil {
		return nil, false
	}
	return v, true
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

func str(raw map[string]json.RawMessage, k string) (string, bool, error) {
	v, ok := value(raw, k)
	if !ok {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", false, fmt.Errorf("%w: claim %q is %s, want a string", ErrClaims, k, typeName(v))
	}
	return s, true, nil
}

func numericDate(raw map[string]json.RawMessage, k string) (time.Time, error) {
	v, ok := value(raw, k)
	if !ok {
		return time.Time{}, nil
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return time.Time{}, fmt.Errorf("%w: claim %q is %s, want a number", ErrClaims, k, typeName(v))
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f >= maxUnixSeconds {
		return time.Time{}, fmt.Errorf("%w: claim %q is not a usable time", ErrClaims, k)
	}
	return time.Unix(int64(f), 0), nil
}

// boolish accepts true/false and the strings "true"/"false", which some
// providers send for email_verified.
func boolish(raw map[string]json.RawMessage, k string) (bool, error) {
	v, ok := value(raw, k)
	if !ok {
		return false, nil
	}
	switch b := v.(type) {
	case bool:
		return b, nil
	case string:
		switch strings.ToLower(b) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("%w: claim %q is not a boolean", ErrClaims, k)
}

func email(raw map[string]json.RawMessage) (string, error) {
	e, ok, err := str(raw, "email")
	if err != nil || !ok || e == "" {
		return "", err
	}
	if len(e) > maxEmail || !printable.Safe(e) || strings.ContainsAny(e, " \t") || emailDomain(e) == "" {
		return "", fmt.Errorf("%w: claim \"email\" is not a usable address", ErrClaims)
	}
	return e, nil
}

// emailDomain is the lower-cased part after the last '@', "" if there is
// no local part or no domain.
func emailDomain(e string) string {
	i := strings.LastIndexByte(e, '@')
	if i <= 0 || i == len(e)-1 {
		return ""
	}
	return strings.ToLower(e[i+1:])
}

// displayName keeps a name for display: escaped if it holds control
// characters or invalid UTF-8, cut to maxName bytes on a rune boundary.
func displayName(s string) string {
	s = printable.Escape(strings.TrimSpace(s))
	if len(s) <= maxName {
		return s
	}
	cut := maxName
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// groups reads the groups claim: a string (one group) or an array of
// strings. Names are trimmed; an empty, overlong or unprintable name
// refuses the token rather than silently dropping a membership. The
// result is sorted, without duplicates, and never nil.
func groups(raw map[string]json.RawMessage, k string) ([]string, error) {
	v, ok := value(raw, k)
	if !ok {
		return nil, fmt.Errorf("%w: no %q claim (is the provider configured to send it, and its scope requested?)", ErrClaims, k)
	}
	var names []string
	switch g := v.(type) {
	case string:
		names = []string{g}
	case []any:
		if len(g) > MaxGroups {
			return nil, fmt.Errorf("%w: claim %q lists %d groups, more than %d", ErrClaims, k, len(g), MaxGroups)
		}
		for i, e := range g {
			s, isStr := e.(string)
			if !isStr {
				return nil, fmt.Errorf("%w: claim %q element %d is %s, want a string", ErrClaims, k, i, typeName(e))
			}
			names = append(names, s)
		}
	default:
		return nil, fmt.Errorf("%w: claim %q is %s, want a string or an array of strings", ErrClaims, k, typeName(v))
	}
	out := make([]string, 0, len(names))
	for i, n := range names {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
			return nil, fmt.Errorf("%w: claim %q element %d is an empty group name", ErrClaims, k, i)
		case len(n) > maxGroupName:
			return nil, fmt.Errorf("%w: claim %q element %d is longer than %d bytes", ErrClaims, k, i, maxGroupName)
		case !printable.Safe(n):
			return nil, fmt.Errorf("%w: claim %q element %d has control characters or invalid UTF-8", ErrClaims, k, i)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
