package restapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestMergePatchRFC7396 runs the examples of RFC 7396 (section 3 and
// appendix A) through mergePatch.
func TestMergePatchRFC7396(t *testing.T) {
	for _, c := range []struct{ target, patch, want string }{
		{`{"title":"Goodbye!","author":{"givenName":"John","familyName":"Doe"},"tags":["example","sample"],"content":"This will be unchanged"}`,
			`{"title":"Hello!","phoneNumber":"+01-123-456-7890","author":{"familyName":null},"tags":["example"]}`,
			`{"title":"Hello!","author":{"givenName":"John"},"tags":["example"],"content":"This will be unchanged","phoneNumber":"+01-123-456-7890"}`},
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`["a","b"]`, `["c","d"]`, `["c","d"]`},
		{`{"a":"b"}`, `["c"]`, `["c"]`},
		{`{"a":"foo"}`, `null`, `null`},
		{`{"a":"foo"}`, `"bar"`, `"bar"`},
		{`{"e":null}`, `{"a":1}`, `{"e":null,"a":1}`},
		{`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
	} {
		got, err := json.Marshal(mergePatch(decodeAny(t, c.target), decodeAny(t, c.patch)))
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(got, []byte(c.want)) {
			t.Errorf("merge %s with %s: got %s, want %s", c.target, c.patch, got, c.want)
		}
	}
}

func decodeAny(t *testing.T, s string) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPatch: PATCH with a merge patch on every resource that has PUT; the
// result is handled as a PUT body.
func TestPatch(t *testing.T) {
	e := newEnv(t)
	f := newFixture(e)

	var p peerView
	e.patch(f.peer, `{"name":"Gateway"}`, 200, &p)
	if p.Name != "Gateway" || p.DNSLabel != "gw" {
		t.Fatalf("peer: %+v", p)
	}
	var g groupView
	e.patch(f.group, `{"peers":null}`, 200, &g) // null removes an optional member
	if g.Name != "exits" || len(g.Peers) != 0 || g.PeersCount != 0 {
		t.Fatalf("group: %+v", g)
	}
	var k setupKeyView
	e.patch(f.key, `{"revoked":true}`, 200, &k)
	if !k.Revoked || k.Name != "ci" || len(k.AutoGroups) != 1 {
		t.Fatalf("setup key: %+v", k)
	}
	var pol policyView
	e.patch(f.policy, `{"enabled":false,"description":null}`, 200, &pol)
	if pol.Enabled || pol.Description != "" || len(pol.Rules) != 1 || strings.Join(pol.Rules[0].Ports, ",") != "80,8000-8080" {
		t.Fatalf("policy: %+v", pol)
	}
	ruleID := pol.Rules[0].ID
	e.patch(f.policy, `{"rules":[{"id":"`+ruleID+`","sources":["exits"],"destinations":["All"]}]}`, 200, &pol)
	if len(pol.Rules) != 1 || pol.Rules[0].ID != ruleID || pol.Rules[0].Sources[0].Name != "exits" || pol.Rules[0].Protocol != "all" {
		t.Fatalf("policy rules replaced: %+v", pol)
	}
	var rt routeView
	e.patch(f.route, `{"metric":7}`, 200, &rt)
	if rt.Metric != 7 || rt.Peer == nil || rt.Network != "10.20.0.0/24" {
		t.Fatalf("route: %+v", rt)
	}
	rt = routeView{}
	e.patch(f.route, `{"peer":null,"peer_groups":["exits"]}`, 200, &rt)
	if rt.Peer != nil || len(rt.PeerGroups) != 1 || rt.PeerGroups[0].Name != "exits" {
		t.Fatalf("route switched to peer groups: %+v", rt)
	}
	var ns nameserverGroupView
	e.patch(f.nameservers, `{"domains":[],"primary":true}`, 200, &ns)
	if !ns.Primary || len(ns.Domains) != 0 || len(ns.Nameservers) != 2 {
		t.Fatalf("nameservers: %+v", ns)
	}
	var z zoneView
	e.patch(f.zone, `{"records":[{"type":"TXT","value":"hi"}]}`, 200, &z)
	if len(z.Records) != 1 || z.Records[0].Name != "@" || z.Domain != "lab.example" {
		t.Fatalf("zone: %+v", z)
	}
	var set map[string]string
	e.patch("/api/dns/settings", `{"dns_domain":"Mesh.Example."}`, 200, &set)
	if set["dns_domain"] != "mesh.example" {
		t.Fatalf("settings: %v", set)
	}
	// application/json is taken as a merge patch too.
	st, b := e.send(e.token, "PATCH", f.route, "application/json", `{"metric":8}`)
	if st != 200 || !strings.Contains(string(b), `"metric": 8`) {
		t.Fatalf("PATCH as application/json: %d %s", st, b)
	}
	// An empty patch changes nothing and answers the object.
	before := e.getMap(f.zone)
	var same map[string]any
	e.patch(f.zone, `{}`, 200, &same)
	if !reflect.DeepEqual(before, same) || !reflect.DeepEqual(before, e.getMap(f.zone)) {
		t.Fatalf("empty patch: %v", same)
	}
}

// TestPatchRefused: bad patches are 400 (415 for another media type, 404
// for an unknown object) and change nothing.
func TestPatchRefused(t *testing.T) {
	e := newEnv(t)
	f := newFixture(e)
	for _, c := range []struct {
		path, ctype, body string
		status            int
		code, msg         string
	}{
		{f.route, mediaMergePatch, `{"metric":`, 400, codeInvalid, "unexpected end of input"},
		{f.route, mediaMergePatch, `{"metric" 1}`, 400, codeInvalid, "malformed JSON at byte offset 11 (line 1, column 11)"},
		{f.route, mediaMergePatch, ``, 400, codeInvalid, "request body is empty"},
		{f.route, mediaMergePatch, `[{"op":"replace","path":"/metric","value":1}]`, 400, codeInvalid, "a merge patch must be a JSON object (RFC 7396), got an array"},
		{f.route, mediaMergePatch, `{"metric":1} {}`, 400, codeInvalid, "unexpected data after the patch"},
		{f.route, mediaMergePatch, `{"colour":"red"}`, 400, codeInvalid, `unknown field "colour"`},
		{f.route, mediaMergePatch, `{"metric":"high"}`, 400, codeInvalid, `field "metric": expected int, got JSON string`},
		{f.route, mediaMergePatch, `{"metric":10000}`, 400, codeInvalid, "metric must be between"},
		{f.route, mediaMergePatch, `{"id":"other"}`, 400, codeInvalid, `"id" is read-only and differs from the object the URL names`},
		{f.route, mediaMergePatch, `{"groups":null}`, 400, codeInvalid, "groups: at least one distribution group"},
		{f.route, mediaMergePatch, `{"peer_groups":["exits"]}`, 400, codeInvalid, "exactly one of"},
		{f.group, mediaMergePatch, `{"name":null}`, 400, codeInvalid, "name is required"},
		{f.group, mediaMergePatch, `{"peers":[null]}`, 400, codeInvalid, "reference"},
		{f.group, mediaMergePatch, `{"peers_count":9}`, 400, codeInvalid, `"peers_count" is read-only (derived)`},
		{f.peer, mediaMergePatch, `{"fqdn":"other.petrel.internal"}`, 400, codeInvalid, `"fqdn" is read-only (derived)`},
		{f.peer, mediaMergePatch, `{"dns_label":"bad label!"}`, 400, codeInvalid, "dns label"},
		{f.key, mediaMergePatch, `{"name":"renamed"}`, 400, codeInvalid, `"name" is read-only and differs from the stored value "ci"`},
		{f.key, mediaMergePatch, `{"revoked":null}`, 400, codeInvalid, `"revoked" is required`},
		{"/api/dns/settings", mediaMergePatch, `{"dns_domain":null}`, 400, codeInvalid, "dns_domain is required"},
		{f.route, "application/json-patch+json", `[{"op":"remove","path":"/metric"}]`, 415, codeMediaType, "send Content-Type: application/merge-patch+json or application/json"},
		{f.route, "text/plain", `{"metric":1}`, 415, codeMediaType, `got Content-Type "text/plain"`},
		{f.route, "", `{"metric":1}`, 415, codeMediaType, "got no Content-Type"},
		{"/api/routes/nope", mediaMergePatch, `{"metric":1}`, 404, codeNotFound, `route "nope" not found`},
		{"/api/groups/All", mediaMergePatch, `{}`, 400, codeInvalid, "cannot be edited"},
	} {
		before := e.snapshot()
		st, b := e.send(e.token, "PATCH", c.path, c.ctype, c.body)
		var eb errorBody
		if err := json.Unmarshal(b, &eb); err != nil || st != c.status || eb.Code != c.code || !strings.Contains(eb.Error, c.msg) {
			t.Errorf("PATCH %s %s (%s): got %d %s, want %d %s %q", c.path, c.body, c.ctype, st, b, c.status, c.code, c.msg)
		}
		if strings.HasPrefix(c.msg, "field ") && strings.Contains(eb.Error, "byte offset") {
			t.Errorf("PATCH %s: error quotes an offset into the merged document: %s", c.body, eb.Error)
		}
		if !reflect.DeepEqual(before, e.snapshot()) {
			t.Errorf("PATCH %s %s: refused patch changed the account", c.path, c.body)
		}
	}
}

// TestBodyMediaType: POST and PUT bodies must be application/json (415
// otherwise, nothing changed).
func TestBodyMediaType(t *testing.T) {
	e := newEnv(t)
	f := newFixture(e)
	for _, c := range []struct{ method, path, ctype string }{
		{"POST", "/api/groups", "application/x-www-form-urlencoded"},
		{"POST", "/api/setup-keys", ""},
		{"PUT", f.group, mediaMergePatch},
		{"PUT", "/api/dns/settings", "text/plain"},
	} {
		before := e.snapshot()
		st, b := e.send(e.token, c.method, c.path, c.ctype, `{"name":"x"}`)
		if st != 415 || !strings.Contains(string(b), codeMediaType) || !strings.Contains(string(b), "send Content-Type: application/json") {
			t.Errorf("%s %s as %q: %d %s", c.method, c.path, c.ctype, st, b)
		}
		if !reflect.DeepEqual(before, e.snapshot()) {
			t.Errorf("%s %s: refused request changed the account", c.method, c.path)
		}
	}
	e.must("POST", "/api/groups", `{"name":"ok"}`, 201, nil)
	st, b := e.send(e.token, "POST", "/api/groups", "Application/JSON; charset=utf-8", `{"name":"ok2"}`)
	if st != 201 {
		t.Fatalf("JSON with charset: %d %s", st, b)
	}
}
