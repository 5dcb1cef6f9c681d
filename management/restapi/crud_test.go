package restapi

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestPeers(t *testing.T) {
	e := newEnv(t)
	key := e.setupKey()
	laptop := e.addPeer(key, "laptop")
	server := e.addPeer(key, "server")

	var peers []peerView
	e.must("GET", "/api/peers", nil, 200, &peers)
	if len(peers) != 2 || peers[0].Name != "laptop" || peers[1].Name != "server" {
		t.Fatalf("peers: %+v", peers)
	}
	p := peers[0]
	if p.ID != laptop.ID || p.IP != laptop.IP.String() || p.FQDN != "laptop.petrel.internal" ||
		p.PublicKey != laptop.PublicKey || p.LastSeen == nil || len(p.Groups) != 1 || p.Groups[0].Name != "All" {
		t.Fatalf("peer view: %+v", p)
	}

	// Addressed by id, name, DNS label, FQDN or IP.
	for _, ref := range []string{laptop.ID, "laptop", "LAPTOP", "laptop.petrel.internal", "laptop.petrel.internal.", laptop.IP.String()} {
		var got peerView
		e.must("GET", "/api/peers/"+url.PathEscape(ref), nil, 200, &got)
		if got.ID != laptop.ID {
			t.Fatalf("GET /api/peers/%s: got %s", ref, got.ID)
		}
	}
	e.fails("GET", "/api/peers/ghost", nil, 404, codeNotFound, `unknown peer "ghost"`)
	e.fails("GET", "/api/peers/100.127.255.254", nil, 404, codeNotFound, "no peer has IP")

	// Rename: display name and DNS label.
	var renamed peerView
	e.must("PUT", "/api/peers/laptop", map[string]any{"name": "Work Laptop", "dns_label": "work"}, 200, &renamed)
	if renamed.Name != "Work Laptop" || renamed.DNSLabel != "work" || renamed.FQDN != "work.petrel.internal" {
		t.Fatalf("renamed: %+v", renamed)
	}
	e.must("GET", "/api/peers/work.petrel.internal", nil, 200, &renamed)
	e.fails("PUT", "/api/peers/work", `{}`, 400, codeInvalid, "nothing to update")
	e.fails("PUT", "/api/peers/work", `{"name": ""}`, 400, codeInvalid, "name must not be empty")
	e.fails("PUT", "/api/peers/work", `{"dns_label": "server"}`, 409, codeConflict, "dns label")
	e.fails("PUT", "/api/peers/work", `{"dns_label": "bad label!"}`, 400, codeInvalid, "dns label")
	e.fails("PUT", "/api/peers/work", `{"ip": "1.2.3.4"}`, 400, codeInvalid, `"ip" is read-only and differs from the stored value "`+laptop.IP.String()+`"`)
	e.fails("PUT", "/api/peers/work", `{"name": "x", "colour": "red"}`, 400, codeInvalid, `unknown field "colour"`)
	e.fails("PUT", "/api/peers/ghost", `{"name": "x"}`, 404, codeNotFound, "unknown peer")

	// Two peers with one display name: the name is ambiguous, the id is not.
	e.must("PUT", "/api/peers/server", map[string]any{"name": "Work Laptop"}, 200, nil)
	e.fails("GET", "/api/peers/Work%20Laptop", nil, 400, codeInvalid, "ambiguous")
	e.fails("POST", "/api/groups", map[string]any{"name": "g", "peers": []string{"Work Laptop"}}, 400, codeInvalid, "ambiguous")

	// Delete by name removes it everywhere.
	e.must("DELETE", "/api/peers/server.petrel.internal", nil, 204, nil)
	e.must("GET", "/api/peers", nil, 200, &peers)
	if len(peers) != 1 || peers[0].ID != laptop.ID {
		t.Fatalf("after delete: %+v", peers)
	}
	if _, ok := e.snapshot().Peers[server.ID]; ok {
		t.Fatal("deleted peer still in the account")
	}
	e.fails("DELETE", "/api/peers/"+server.ID, nil, 404, codeNotFound, "unknown peer")
}

func TestGroups(t *testing.T) {
	e := newEnv(t)
	key := e.setupKey()
	a := e.addPeer(key, "alpha")
	b := e.addPeer(key, "beta")

	var g groupView
	e.must("POST", "/api/groups", map[string]any{"name": "web", "peers": []any{"alpha", map[string]string{"id": b.ID}, "alpha"}}, 201, &g)
	if g.ID == "" || g.Name != "web" || g.PeersCount != 2 || g.Peers[0].Name != "alpha" || g.Peers[1].ID != b.ID || g.Implicit {
		t.Fatalf("created group: %+v", g)
	}
	var got groupView
	e.must("GET", "/api/groups/web", nil, 200, &got)
	if got.ID != g.ID {
		t.Fatalf("by name: %+v", got)
	}
	e.must("PUT", "/api/groups/"+g.ID, map[string]any{"name": "web2", "peers": []string{a.IP.String()}}, 200, &got)
	if got.Name != "web2" || got.PeersCount != 1 || got.Peers[0].ID != a.ID {
		t.Fatalf("updated: %+v", got)
	}
	// GET output can be PUT back; read-only fields must not change.
	e.must("PUT", "/api/groups/web2", `{"name":"web2","peers":[{"id":"`+a.ID+`","name":"alpha"}],"peers_count":1}`, 200, nil)
	e.fails("PUT", "/api/groups/web2", `{"name":"web2","peers":[],"peers_count":7}`, 400, codeInvalid, `"peers_count" is read-only (derived)`)
	e.must("PUT", "/api/groups/web2", `{"name":"web2","peers":[{"id":"`+a.ID+`","name":"alpha"}]}`, 200, nil)

	var list []groupView
	e.must("GET", "/api/groups", nil, 200, &list)
	if len(list) != 2 || list[0].Name != "All" || !list[0].Implicit || list[0].PeersCount != 2 || list[1].Name != "web2" {
		t.Fatalf("list: %+v", list)
	}
	e.fails("POST", "/api/groups", map[string]any{"name": "WEB2"}, 409, codeConflict, "already exists")
	e.fails("PUT", "/api/groups/All", map[string]any{"name": "All"}, 400, codeInvalid, "cannot be edited")
	e.fails("DELETE", "/api/groups/All", nil, 400, codeInvalid, "cannot be deleted")
	e.fails("PUT", "/api/groups/nope", map[string]any{"name": "x"}, 404, codeNotFound, `unknown group "nope"`)

	// A group in use by a policy cannot be deleted.
	e.must("POST", "/api/policies", map[string]any{"name": "p", "rules": []any{map[string]any{"sources": []string{"web2"}, "destinations": []string{"All"}}}}, 201, nil)
	e.fails("DELETE", "/api/groups/web2", nil, 409, codeConflict, "used by policy")
	e.must("POST", "/api/groups", map[string]any{"name": "tmp"}, 201, nil)
	e.must("DELETE", "/api/groups/tmp", nil, 204, nil)
	e.fails("DELETE", "/api/groups/tmp", nil, 404, codeNotFound, "unknown group")
}

func TestSetupKeys(t *testing.T) {
	e := newEnv(t)
	e.must("POST", "/api/groups", map[string]any{"name": "laptops"}, 201, nil)
	var k setupKeyView
	e.must("POST", "/api/setup-keys", map[string]any{
		"name": "ci", "reusable": true, "usage_limit": 3, "expires_in": "24h", "auto_groups": []string{"laptops"}, "ephemeral": true,
	}, 201, &k)
	if !strings.HasPrefix(k.Key, k.KeyPrefix) || k.KeyPrefix == "" || !k.Reusable || k.UsageLimit != 3 || k.State != "valid" || !k.Valid ||
		k.ExpiresAt == nil || time.Until(*k.ExpiresAt) < 23*time.Hour || len(k.AutoGroups) != 1 || k.AutoGroups[0].Name != "laptops" || !k.Ephemeral {
		t.Fatalf("created key: %+v", k)
	}
	// The key is shown once only.
	var got setupKeyView
	e.must("GET", "/api/setup-keys/"+k.ID, nil, 200, &got)
	if got.Key != "" || got.ID != k.ID {
		t.Fatalf("GET shows key: %+v", got)
	}
	_, body := e.do("GET", "/api/setup-keys", nil)
	if strings.Contains(string(body), k.Key) || strings.Contains(string(body), `"key":`) {
		t.Fatalf("list leaks the key: %s", body)
	}
	// A peer registered with it joins the auto group.
	p := e.addPeer(k.Key, "ci-runner")
	var pv peerView
	e.must("GET", "/api/peers/"+p.ID, nil, 200, &pv)
	if len(pv.Groups) != 2 || pv.Groups[1].Name != "laptops" || !pv.Ephemeral {
		t.Fatalf("peer groups: %+v", pv)
	}
	e.must("GET", "/api/setup-keys/"+k.ID, nil, 200, &got)
	if got.UsedTimes != 1 || got.LastUsed == nil {
		t.Fatalf("usage not counted: %+v", got)
	}

	// Durations.
	var week setupKeyView
	e.must("POST", "/api/setup-keys", map[string]any{"name": "week", "expires_in": "7d"}, 201, &week)
	if week.ExpiresAt == nil || time.Until(*week.ExpiresAt) < 6*24*time.Hour || week.UsageLimit != 1 {
		t.Fatalf("7d key: %+v", week)
	}
	e.must("POST", "/api/setup-keys", map[string]any{"name": "forever"}, 201, &got)
	if got.ExpiresAt != nil {
		t.Fatalf("never-expiring key: %+v", got)
	}
	for _, bad := range []struct{ body, msg string }{
		{`{"name":"x","expires_in":"tomorrow"}`, `bad duration "tomorrow"`},
		{`{"name":"x","expires_in":"-1h"}`, "must not be negative"},
		{`{"name":"x","expires_in":"99999d"}`, "bad duration"},
		{`{"name":"x","expires_in":"100000h"}`, "at most"},
		{`{"name":"x","expires_in":24}`, "duration string"},
		{`{"name":"x","usage_limit":-1}`, "must not be negative"},
		{`{"name":"x","usage_limit":5}`, "reusable"},
		{`{"name":"x","auto_groups":["nope"]}`, `auto_groups[0]: unknown group "nope"`},
		{`{"name":"  "}`, "name must not be empty"},
		{`{"name":"x","key":"psk_mine"}`, `unknown field "key"`},
	} {
		e.fails("POST", "/api/setup-keys", bad.body, 400, codeInvalid, bad.msg)
	}

	// Revoke: final.
	e.fails("PUT", "/api/setup-keys/"+k.ID, `{}`, 400, codeInvalid, `"revoked" is required`)
	e.fails("PUT", "/api/setup-keys/"+k.ID, `{"name":"y"}`, 400, codeInvalid, `"name" is read-only and differs from the stored value "ci"`)
	e.fails("PUT", "/api/setup-keys/"+k.ID, `{"revoked":true,"key":"psk_x"}`, 400, codeInvalid, `unknown field "key"`)
	e.must("PUT", "/api/setup-keys/"+k.ID, `{"revoked": true}`, 200, &got)
	if !got.Revoked || got.State != "revoked" || got.Valid {
		t.Fatalf("revoked: %+v", got)
	}
	e.must("PUT", "/api/setup-keys/"+k.ID, `{"revoked": true}`, 200, nil)
	e.fails("PUT", "/api/setup-keys/"+k.ID, `{"revoked": false}`, 400, codeInvalid, "cannot be restored")
	e.fails("PUT", "/api/setup-keys/nope", `{"revoked": true}`, 404, codeNotFound, "not found")
	e.must("DELETE", "/api/setup-keys/"+k.ID, nil, 204, nil)
	e.fails("GET", "/api/setup-keys/"+k.ID, nil, 404, codeNotFound, "not found")
	e.fails("DELETE", "/api/setup-keys/"+k.ID, nil, 404, codeNotFound, "not found")
}
