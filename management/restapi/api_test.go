package restapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestAuth(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, header string
		msg          string
	}{
		{"missing", "", "missing admin token"},
		{"wrong scheme", "Basic " + e.token, "missing admin token"},
		{"empty bearer", "Bearer ", "missing admin token"},
		{"wrong token", "Bearer ptok_wrong", "admin token rejected"},
		{"token with suffix", "Bearer " + e.token + "x", "admin token rejected"},
		{"same shape", "Bearer ptok_" + strings.Repeat("x", len(e.token)-len("ptok_")), "admin token rejected"},
		{"last character differs", "Bearer " + e.token[:len(e.token)-1] + lastFlipped(e.token), "admin token rejected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/api/peers", "/api/groups", "/api/nope", "/api/policies/check?src=a&dst=b"} {
				req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var eb errorBody
				err = json.NewDecoder(resp.Body).Decode(&eb)
				resp.Body.Close()
				if resp.StatusCode != 401 || err != nil || eb.Code != codeUnauthenticated || !strings.Contains(eb.Error, tc.msg) {
					t.Fatalf("%s: got %d %+v (%v), want 401 %q", path, resp.StatusCode, eb, err, tc.msg)
				}
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Fatalf("%s: no WWW-Authenticate header", path)
				}
			}
		})
	}
	// A POST with a bad token changes nothing.
	before := e.snapshot()
	st, _ := e.doToken("bad", "POST", "/api/groups", `{"name":"x"}`)
	if st != 401 || len(e.snapshot().Groups) != len(before.Groups) {
		t.Fatalf("unauthenticated POST: status %d, groups %d→%d", st, len(before.Groups), len(e.snapshot().Groups))
	}
	// The bearer scheme is case-insensitive.
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/accounts", nil)
	req.Header.Set("Authorization", "bearer "+e.token)
	resp, err := e.srv.Client().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("lower-case bearer: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
}

func TestOpenAPIServedWithoutToken(t *testing.T) {
	e := newEnv(t)
	st, b := e.doToken("", "GET", "/api/openapi.yaml", nil)
	if st != 200 || !strings.HasPrefix(string(b), "openapi: 3.0") {
		t.Fatalf("spec: %d %.40q", st, b)
	}
}

func TestUnknownEndpointAndMethod(t *testing.T) {
	e := newEnv(t)
	e.fails("GET", "/api/nothing", nil, 404, codeNotFound, "no such endpoint")
	e.fails("GET", "/api/peers/x/y", nil, 404, codeNotFound, "no such endpoint")
	st, b := e.do("PATCH", "/api/groups", `{}`)
	if st != 405 || !strings.Contains(string(b), "allowed: GET, POST") {
		t.Fatalf("PATCH /api/groups: %d %s", st, b)
	}
	e.fails("POST", "/api/peers", `{}`, 405, codeMethod, "allowed: GET")
	e.fails("POST", "/api/dns/settings", `{}`, 405, codeMethod, "allowed: GET, PUT")
}

func TestAccounts(t *testing.T) {
	e := newEnv(t)
	var list []accountView
	e.must("GET", "/api/accounts", nil, 200, &list)
	if len(list) != 1 || list[0].ID != e.acct || list[0].Network == "" || list[0].Settings.DNSDomain != "petrel.internal" {
		t.Fatalf("accounts: %+v", list)
	}
	var one accountView
	e.must("GET", "/api/accounts/"+e.acct, nil, 200, &one)
	if one.ID != e.acct || one.Network != list[0].Network {
		t.Fatalf("account: %+v", one)
	}
	e.fails("GET", "/api/accounts/someone-else", nil, 404, codeNotFound, "not found")
}

func TestBodyValidation(t *testing.T) {
	e := newEnv(t)
	big := `{"name":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	for _, tc := range []struct {
		name, body string
		status     int
		code, msg  string
	}{
		{"empty", ``, 400, codeInvalid, "request body is empty"},
		{"not json", `name=x`, 400, codeInvalid, "malformed JSON at byte offset"},
		{"syntax position", "{\n  \"name\": \"x\",,\n}", 400, codeInvalid, "line 2"},
		{"truncated", `{"name": "x"`, 400, codeInvalid, "unexpected end of input"},
		{"unknown field", `{"name": "x", "color": "red"}`, 400, codeInvalid, `unknown field "color"`},
		{"wrong type", `{"name": 5}`, 400, codeInvalid, `field "name": expected string`},
		{"array", `[]`, 400, codeInvalid, "expected"},
		{"trailing data", `{"name": "x"} {"name": "y"}`, 400, codeInvalid, "unexpected data after the object"},
		{"too large", big, 413, codeTooLarge, "larger than"},
		{"null peer ref", `{"name": "x", "peers": [null]}`, 400, codeInvalid, "reference"},
		{"numeric peer ref", `{"name": "x", "peers": [5]}`, 400, codeInvalid, "reference must be a string"},
		{"ref object unknown field", `{"name": "x", "peers": [{"idd": "a"}]}`, 400, codeInvalid, "reference object"},
		{"unknown peer", `{"name": "x", "peers": ["ghost"]}`, 400, codeInvalid, `peers[0]: unknown peer "ghost"`},
		{"blank name", `{"name": "  "}`, 400, codeInvalid, "name is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.fails("POST", "/api/groups", tc.body, tc.status, tc.code, tc.msg)
		})
	}
}

// lastFlipped returns a character different from tok's last one.
func lastFlipped(tok string) string {
	if tok[len(tok)-1] == 'a' {
		return "b"
	}
	return "a"
}

// TestFixedPathWins: /api/policies/check is its own path: methods it does
// not serve are 405 with Allow: GET, never taken for /api/policies/{id}
// with the id "check" (issue 16). The same holds for every fixed path that
// a {wildcard} route also matches.
func TestFixedPathWins(t *testing.T) {
	e := newEnv(t)
	policy := `{"name":"p","rules":[{"sources":["All"],"destinations":["All"]}]}`
	for _, m := range []string{"PUT", "PATCH", "DELETE", "POST"} {
		e.fails(m, "/api/policies/check", policy, 405, codeMethod, "allowed: GET")
	}
	checked := 0
	for _, fixed := range routes {
		if strings.Contains(fixed.path, "{") {
			continue
		}
		want := allowed(routes, fixed.path)
		for _, wild := range routes {
			if wild.path == fixed.path || !pathMatches(wild.path, fixed.path) || slices.Contains(want, wild.method) {
				continue
			}
			req, _ := http.NewRequest(wild.method, e.srv.URL+fixed.path, strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer "+e.token)
			req.Header.Set("Content-Type", mediaJSON)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != strings.Join(want, ", ") {
				t.Errorf("%s %s: %d Allow %q, want 405 Allow %q", wild.method, fixed.path, resp.StatusCode, resp.Header.Get("Allow"), want)
			}
			checked++
		}
	}
	if checked < 3 {
		t.Fatalf("only %d fixed-path collisions checked", checked)
	}
}

func TestAllowed(t *testing.T) {
	for path, want := range map[string]string{
		"/api/policies/check": "GET",
		"/api/policies/p1":    "GET, PUT, PATCH, DELETE",
		"/api/policies":       "GET, POST",
		"/api/dns/settings":   "GET, PUT, PATCH",
		"/api/peers/x/y":      "",
	} {
		if got := strings.Join(allowed(routes, path), ", "); got != want {
			t.Errorf("allowed(%s) = %q, want %q", path, got, want)
		}
	}
}
