package restapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// fixture creates one object of every resource that has PUT and returns
// their paths.
type fixture struct {
	peer, group, key, policy, route, exitRoute, nameservers, zone string
}

func newFixture(e *env) fixture {
	e.t.Helper()
	key := e.setupKey()
	gw := e.addPeer(key, "gw")
	var g groupView
	e.must("POST", "/api/groups", map[string]any{"name": "exits", "peers": []string{"gw"}}, 201, &g)
	var k setupKeyView
	e.must("POST", "/api/setup-keys", map[string]any{"name": "ci", "reusable": true, "expires_in": "24h", "auto_groups": []string{"exits"}}, 201, &k)
	var p policyView
	e.must("POST", "/api/policies", map[string]any{"name": "web", "description": "d", "rules": []any{map[string]any{
		"sources": []string{"All"}, "destinations": []string{"exits"}, "protocol": "tcp", "ports": []any{"80", "8000-8080"}}}}, 201, &p)
	var rt, exit routeView
	e.must("POST", "/api/routes", map[string]any{"network": "10.20.0.0/24", "peer": "gw", "groups": []string{"All"}, "metric": 10}, 201, &rt)
	e.must("POST", "/api/routes", map[string]any{"network": "0.0.0.0/0", "peer_groups": []string{"exits"}, "groups": []string{"All"}}, 201, &exit)
	var ns nameserverGroupView
	e.must("POST", "/api/dns/nameservers", map[string]any{"name": "corp", "nameservers": []string{"10.0.0.53", "[2001:db8::53]:5353"},
		"domains": []string{"corp.example"}, "groups": []string{"All"}}, 201, &ns)
	var z zoneView
	e.must("POST", "/api/dns/zones", map[string]any{"domain": "lab.example", "records": []any{
		map[string]any{"name": "db", "type": "A", "value": "10.0.0.5", "ttl": 60}}}, 201, &z)
	return fixture{
		peer: "/api/peers/" + gw.ID, group: "/api/groups/" + g.ID, key: "/api/setup-keys/" + k.ID,
		policy: "/api/policies/" + p.ID, route: "/api/routes/" + rt.ID, exitRoute: "/api/routes/" + exit.ID,
		nameservers: "/api/dns/nameservers/" + ns.ID, zone: "/api/dns/zones/" + z.ID,
	}
}

// getMap returns the GET representation of path as a generic object.
func (e *env) getMap(path string) map[string]any {
	e.t.Helper()
	var m map[string]any
	e.must("GET", path, nil, 200, &m)
	return m
}

func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// TestPutAcceptsGet: for every resource with PUT, the GET body sent back
// is 200 and changes nothing; an edited field is applied; a changed
// read-only field is a 400 naming it; an unknown field is still a 400.
func TestPutAcceptsGet(t *testing.T) {
	e := newEnv(t)
	f := newFixture(e)
	for _, c := range []struct {
		name, path string
		edit       func(m map[string]any)
		applied    func(m map[string]any) bool
		readOnly   string
		bogus      any
		msg        string
	}{
		{"peer", f.peer, func(m map[string]any) { m["name"] = "Gateway" },
			func(m map[string]any) bool { return m["name"] == "Gateway" && m["dns_label"] == "gw" },
			"public_key", "AAAA", `"public_key" is read-only and differs from the stored value`},
		{"peer id", f.peer, func(m map[string]any) { m["dns_label"] = "gw2"; m["fqdn"] = "gw2.petrel.internal" },
			func(m map[string]any) bool { return m["fqdn"] == "gw2.petrel.internal" },
			"id", "someone-else", `"id" is read-only and differs from the object the URL names`},
		{"group", f.group, func(m map[string]any) { m["peers"] = []any{} },
			func(m map[string]any) bool { return len(m["peers"].([]any)) == 0 && m["peers_count"] == 0.0 },
			"implicit", true, `"implicit" is read-only`},
		{"setup key", f.key, func(m map[string]any) { m["revoked"] = true },
			func(m map[string]any) bool { return m["revoked"] == true && m["state"] == "revoked" },
			"reusable", false, `"reusable" is read-only and differs from the stored value true`},
		{"policy", f.policy, func(m map[string]any) { m["description"] = "changed" },
			func(m map[string]any) bool { return m["description"] == "changed" },
			"id", "p-other", `"id" is read-only`},
		{"route", f.route, func(m map[string]any) { m["metric"] = 20 },
			func(m map[string]any) bool { return m["metric"] == 20.0 && m["peer"] != nil },
			"exit_node", true, `"exit_node" is read-only (derived) and matches neither the stored value false nor the result of this update false`},
		{"exit route", f.exitRoute, func(m map[string]any) { m["network"] = "10.9.0.0/16"; m["network_id"] = "" },
			func(m map[string]any) bool { return m["exit_node"] == false && m["network_id"] == "10.9.0.0/16" },
			"id", "r-other", `"id" is read-only`},
		{"nameserver group", f.nameservers, func(m map[string]any) { m["domains"] = []any{"other.example"} },
			func(m map[string]any) bool { return m["domains"].([]any)[0] == "other.example" },
			"id", "n-other", `"id" is read-only`},
		{"zone", f.zone, func(m map[string]any) { m["records"] = []any{} },
			func(m map[string]any) bool { return len(m["records"].([]any)) == 0 },
			"id", "z-other", `"id" is read-only`},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.getMap(c.path)
			snap := e.snapshot()
			var got map[string]any
			e.must("PUT", c.path, before, 200, &got)
			if after := e.getMap(c.path); !reflect.DeepEqual(before, after) || !reflect.DeepEqual(got, after) {
				t.Fatalf("PUT of the GET body changed the object:\nbefore %v\nafter  %v\nreply  %v", before, after, got)
			}
			now := e.snapshot()
			now.Version = snap.Version // every write moves it on
			if !reflect.DeepEqual(snap, now) {
				t.Fatal("PUT of the GET body changed the account")
			}

			bad := clone(before)
			bad[c.readOnly] = c.bogus
			e.fails("PUT", c.path, bad, 400, codeInvalid, c.msg)
			bad = clone(before)
			bad["colour"] = "red"
			e.fails("PUT", c.path, bad, 400, codeInvalid, `unknown field "colour"`)

			edited := clone(before)
			c.edit(edited)
			e.must("PUT", c.path, edited, 200, &got)
			if !c.applied(got) || !c.applied(e.getMap(c.path)) {
				t.Fatalf("edit not applied: %v", got)
			}
		})
	}

	// DNS settings: no read-only members; the GET body is a valid PUT.
	before := e.getMap("/api/dns/settings")
	e.must("PUT", "/api/dns/settings", before, 200, nil)
	if after := e.getMap("/api/dns/settings"); !reflect.DeepEqual(before, after) {
		t.Fatalf("settings changed: %v", after)
	}
}

// TestPutLiveFieldsIgnored: status a peer or setup key reports by itself
// may be stale in the body; it is ignored, not compared.
func TestPutLiveFieldsIgnored(t *testing.T) {
	e := newEnv(t)
	f := newFixture(e)
	peer := e.getMap(f.peer)
	peer["connected"], peer["last_seen"], peer["meta"] = true, "2001-01-01T00:00:00Z", map[string]any{"hostname": "x", "os": "", "kernel": "", "version": "", "netstack_mode": true}
	e.must("PUT", f.peer, peer, 200, nil)
	key := e.getMap(f.key)
	key["used_times"], key["state"], key["valid"], key["last_used"] = 99, "expired", false, nil
	var k setupKeyView
	e.must("PUT", f.key, key, 200, &k)
	if k.UsedTimes != 0 || k.State != "valid" {
		t.Fatalf("live fields were taken from the body: %+v", k)
	}
}

// TestNullRefused: null is refused in POST and PUT bodies, naming the
// member; lists in responses are [] and never null.
func TestNullRefused(t *testing.T) {
	e := newEnv(t)
	f := newFixture(e)
	for _, c := range []struct{ method, path, body, msg string }{
		{"POST", "/api/groups", `{"name":"x","peers":null}`, "peers: null is not accepted"},
		{"PUT", f.group, `{"name":"exits","peers":null}`, "peers: null is not accepted"},
		{"POST", "/api/policies", `{"name":"x","rules":[{"sources":["All"],"destinations":["All"],"ports":null}]}`, "rules[0].ports: null is not accepted"},
		{"PUT", f.route, `{"network":"10.20.0.0/24","peer":null,"peer_groups":["exits"],"groups":["All"]}`, "peer: null is not accepted"},
		{"POST", "/api/dns/zones", `{"domain":"x.example","records":[null]}`, "records[0]: null is not accepted"},
		{"POST", "/api/dns/nameservers", `null`, "request body is null"},
		{"PUT", "/api/dns/settings", `{"dns_domain":null}`, "dns_domain: null is not accepted"},
	} {
		e.fails(c.method, c.path, c.body, 400, codeInvalid, c.msg)
	}
	for _, path := range []string{"/api/peers", "/api/groups", "/api/setup-keys", "/api/policies", "/api/routes", "/api/dns/nameservers", "/api/dns/zones"} {
		_, body := e.do("GET", path, nil)
		if strings.Contains(string(body), "null") && !strings.Contains(string(body), `_at": null`) && !strings.Contains(string(body), `last_login": null`) && !strings.Contains(string(body), `last_used": null`) {
			t.Errorf("GET %s has a null other than a timestamp: %s", path, body)
		}
	}
}

// TestStripKeepsOffsets: removing read-only members keeps the byte offsets
// of the rest of the body, which decode errors quote.
func TestStripKeepsOffsets(t *testing.T) {
	ro := readOnly{fixed: []string{"id"}, live: []string{"state"}}
	stored := map[string]any{"id": "a", "state": "x"}
	for _, body := range []string{
		`{"id":"a","metric":"high"}`,
		`{"metric":"high","id":"a"}`,
		`{ "state": 1 , "id" : "a" ,"metric":"high" }`,
		`{"id":"a","state":[1,{"x":2}],"id":"a","metric":"high"}`,
	} {
		ed, err := ro.strip([]byte(body), stored)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if len(ed.body) != len(body) || strings.Contains(string(ed.body), `"id"`) || strings.Contains(string(ed.body), `"state"`) {
			t.Fatalf("%s: stripped to %q", body, ed.body)
		}
		var v struct {
			Metric int `json:"metric"`
		}
		err = decodeJSON(ed.body, &v)
		want := strings.Index(body, `"high"`) + len(`"high"`)
		if err == nil || !strings.Contains(err.Error(), "at byte offset "+itoa(want)) {
			t.Fatalf("%s: error %v, want offset %d", body, err, want)
		}
	}
	if _, err := ro.strip([]byte(`{"id":"b"}`), stored); err == nil || !strings.Contains(err.Error(), `"id" is read-only`) {
		t.Fatalf("changed id: %v", err)
	}
	// Not an object: left for the decoder to report.
	for _, body := range []string{`[]`, `{"id":`, ``, `null`} {
		if ed, err := ro.strip([]byte(body), stored); err != nil || string(ed.body) != body {
			t.Fatalf("%q: %q %v", body, ed.body, err)
		}
	}
}
