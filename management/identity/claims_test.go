package identity

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseClaims(t *testing.T) {
	cases := []struct {
		name    string
		payload string
		groups  string // groups claim name
		check   func(claims) bool
		want    error
	}{
		{"groups sorted, trimmed, unique", `{"groups":[" ops","eng","ops "]}`, "groups",
			func(c claims) bool { return slices.Equal(c.groups, []string{"eng", "ops"}) }, nil},
		{"empty groups array", `{"groups":[]}`, "groups", func(c claims) bool { return c.groups != nil && len(c.groups) == 0 }, nil},
		{"groups null is missing", `{"groups":null}`, "groups", nil, ErrClaims},
		{"groups not read", `{"groups":7}`, "", func(c claims) bool { return c.groups == nil }, nil},
		{"other claim name", `{"groups":["x"],"roles":"admin"}`, "roles", func(c claims) bool { return slices.Equal(c.groups, []string{"admin"}) }, nil},
		{"group name at the limit", `{"g":["` + strings.Repeat("a", maxGroupName) + `"]}`, "g", func(c claims) bool { return len(c.groups) == 1 }, nil},
		{"group name over the limit", `{"g":["` + strings.Repeat("a", maxGroupName+1) + `"]}`, "g", nil, ErrClaims},
		{"group name invalid UTF-8", `{"g":["\xff"]}`, "g", nil, ErrClaims},
		{"email_verified as TRUE", `{"email_verified":"TRUE"}`, "", func(c claims) bool { return c.emailVerified }, nil},
		{"email_verified false", `{"email_verified":false}`, "", func(c claims) bool { return !c.emailVerified }, nil},
		{"email_verified number", `{"email_verified":1}`, "", nil, ErrClaims},
		{"email with spaces", `{"email":"a b@c"}`, "", nil, ErrClaims},
		{"email without domain", `{"email":"a@"}`, "", nil, ErrClaims},
		{"email empty is none", `{"email":""}`, "", func(c claims) bool { return c.email == "" }, nil},
		{"name escaped", `{"name":"Eve\u001b[31m"}`, "", func(c claims) bool { return c.name == `Eve\x1b[31m` }, nil},
		{"name cut on a rune boundary", `{"name":"` + strings.Repeat("é", maxName) + `"}`, "",
			func(c claims) bool { return len(c.name) <= maxName && strings.Count(c.name, "é") == maxName/2 }, nil},
		{"nbf float", `{"nbf":1800000000.5}`, "", func(c claims) bool { return c.notBefore.Equal(time.Unix(1_800_000_000, 0)) }, nil},
		{"nbf negative", `{"nbf":-1}`, "", nil, ErrClaims},
		{"nbf huge", `{"nbf":1e300}`, "", nil, ErrClaims},
		{"azp not a string", `{"azp":["a"]}`, "", nil, ErrClaims},
		{"not an object", `[1,2]`, "", nil, ErrClaims},
		{"trailing garbage", `{"name":"x"} junk`, "", nil, ErrClaims},
		{"null payload", `null`, "groups", nil, ErrClaims},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseClaims([]byte(c.payload), c.groups)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if err == nil && c.check != nil && !c.check(got) {
				t.Fatalf("claims %+v", got)
			}
		})
	}
}
