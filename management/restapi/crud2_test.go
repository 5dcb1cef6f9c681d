package restapi

import (
	"net/url"
	"strings"
	"testing"
)

func TestPoliciesAndCheck(t *testing.T) {
	e := newEnv(t)
	key := e.setupKey()
	web := e.addPeer(key, "web")
	laptop := e.addPeer(key, "laptop")
	e.must("POST", "/api/groups", map[string]any{"name": "servers", "peers": []string{"web"}}, 201, nil)
	e.must("POST", "/api/groups", map[string]any{"name": "users", "peers": []string{"laptop"}}, 201, nil)

	check := func(src, dst, proto, port string) checkView {
		t.Helper()
		q := url.Values{"src": {src}, "dst": {dst}}
		if proto != "" {
			q.Set("proto", proto)
		}
		if port != "" {
			q.Set("port", port)
		}
		var v checkView
		e.must("GET", "/api/policies/check?"+q.Encode(), nil, 200, &v)
		return v
	}
	// Default deny.
	if v := check("laptop", "web", "tcp", "80"); v.Allowed || v.PolicyID != "" || v.Reason == "" {
		t.Fatalf("default: %+v", v)
	}

	var p policyView
	e.must("POST", "/api/policies", map[string]any{
		"name": "web access",
		"rules": []any{map[string]any{
			"name": "http", "sources": []string{"users"}, "destinations": []any{map[string]string{"name": "servers"}},
			"protocol": "tcp", "ports": []any{"80", "8000-8080", 443},
		}},
	}, 201, &p)
	if p.ID == "" || !p.Enabled || len(p.Rules) != 1 || p.Rules[0].ID == "" || p.Rules[0].Action != "accept" ||
		p.Rules[0].Sources[0].Name != "users" || strings.Join(p.Rules[0].Ports, ",") != "80,8000-8080,443" {
		t.Fatalf("created policy: %+v", p)
	}
	ruleID := p.Rules[0].ID

	for _, tc := range []struct {
		src, dst, proto, port string
		allowed               bool
	}{
		{"laptop", "web", "tcp", "80", true},
		{laptop.ID, web.IP.String(), "tcp", "8080", true},
		{"laptop.petrel.internal", "web.petrel.internal", "tcp", "443", true},
		{"laptop", "web", "tcp", "22", false},
		{"laptop", "web", "udp", "80", false},
		{"web", "laptop", "tcp", "80", false}, // not bidirectional
		{"laptop", "web", "", "", false},
	} {
		v := check(tc.src, tc.dst, tc.proto, tc.port)
		if v.Allowed != tc.allowed || (tc.allowed && (v.PolicyID != p.ID || v.RuleID != ruleID)) || v.Reason == "" {
			t.Fatalf("check %+v: %+v", tc, v)
		}
		if v.Src.ID == "" || v.Dst.ID == "" {
			t.Fatalf("check %+v: refs missing: %+v", tc, v)
		}
	}
	for _, bad := range []struct{ q, msg string }{
		{"dst=web&proto=tcp&port=80", `"src" is required`},
		{"src=laptop&dst=ghost&proto=tcp&port=80", `dst: unknown peer "ghost"`},
		{"src=laptop&dst=web&proto=sctp", `bad protocol "sctp"`},
		{"src=laptop&dst=web&proto=tcp&port=70000", `bad port "70000"`},
		{"src=laptop&dst=web&proto=tcp", "port is required"},
		{"src=laptop&dst=web&proto=icmp&port=1", "only meaningful"},
		{"src=laptop&dst=web&colour=red", `unknown query parameter "colour"`},
		{"src=laptop&src=web&dst=web", "given 2 times"},
		{"src=%zz&dst=web", "bad query string"},
	} {
		e.fails("GET", "/api/policies/check?"+bad.q, nil, 400, codeInvalid, bad.msg)
	}

	// Update keeps the rule ID when given; disabling stops it matching.
	var upd policyView
	e.must("PUT", "/api/policies/"+p.ID, map[string]any{
		"name": "web access", "enabled": false,
		"rules": []any{map[string]any{"id": ruleID, "sources": []string{"users"}, "destinations": []string{"servers"}, "bidirectional": true}},
	}, 200, &upd)
	if upd.Enabled || upd.Rules[0].ID != ruleID || upd.Rules[0].Protocol != "all" || !upd.Rules[0].Bidirectional {
		t.Fatalf("updated: %+v", upd)
	}
	if v := check("laptop", "web", "tcp", "80"); v.Allowed {
		t.Fatalf("disabled policy still allows: %+v", v)
	}

	for _, bad := range []struct{ body, msg string }{
		{`{"name":"x"}`, "at least one rule"},
		{`{"name":"","rules":[{"sources":["users"],"destinations":["servers"]}]}`, "name is required"},
		{`{"name":"x","rules":[{"sources":["users"],"destinations":[]}]}`, "rules[0]: sources and destinations"},
		{`{"name":"x","rules":[{"sources":["nope"],"destinations":["servers"]}]}`, `rules[0].sources[0]: unknown group "nope"`},
		{`{"name":"x","rules":[{"sources":["users"],"destinations":["servers"],"protocol":"gre"}]}`, `bad protocol "gre"`},
		{`{"name":"x","rules":[{"sources":["users"],"destinations":["servers"],"action":"allow"}]}`, `bad action "allow"`},
		{`{"name":"x","rules":[{"sources":["users"],"destinations":["servers"],"protocol":"tcp","ports":["90-80"]}]}`, "end below start"},
		{`{"name":"x","rules":[{"sources":["users"],"destinations":["servers"],"protocol":"tcp","ports":["0"]}]}`, `bad port "0"`},
		{`{"name":"x","rules":[{"sources":["users"],"destinations":["servers"],"ports":["80"]}]}`, "ports need protocol tcp or udp"},
		{`{"name":"x","rules":[{"sources":["users"],"destinations":["servers"],"port":"80"}]}`, `unknown field "port"`},
	} {
		e.fails("POST", "/api/policies", bad.body, 400, codeInvalid, bad.msg)
		e.fails("PUT", "/api/policies/"+p.ID, bad.body, 400, codeInvalid, bad.msg)
	}
	e.fails("PUT", "/api/policies/nope", `{"name":"x","rules":[{"sources":["users"],"destinations":["servers"]}]}`, 404, codeNotFound, "not found")

	var list []policyView
	e.must("GET", "/api/policies", nil, 200, &list)
	if len(list) != 1 {
		t.Fatalf("list: %+v", list)
	}
	e.must("GET", "/api/policies/"+p.ID, nil, 200, nil)
	e.must("DELETE", "/api/policies/"+p.ID, nil, 204, nil)
	e.fails("GET", "/api/policies/"+p.ID, nil, 404, codeNotFound, "not found")
}

func TestRoutes(t *testing.T) {
	e := newEnv(t)
	key := e.setupKey()
	gw := e.addPeer(key, "gw")
	e.must("POST", "/api/groups", map[string]any{"name": "exits", "peers": []string{"gw"}}, 201, nil)

	var r routeView
	e.must("POST", "/api/routes", map[string]any{"network": "10.20.0.0/24", "peer": "gw", "groups": []string{"All"}, "metric": 10, "masquerade": true}, 201, &r)
	if r.ID == "" || r.Network != "10.20.0.0/24" || r.Peer == nil || r.Peer.ID != gw.ID || r.Peer.Name != "gw" ||
		r.Groups[0].Name != "All" || r.Metric != 10 || !r.Masquerade || !r.Enabled || r.ExitNode || r.NetworkID != "10.20.0.0/24" {
		t.Fatalf("created route: %+v", r)
	}
	var exit routeView
	e.must("POST", "/api/routes", map[string]any{"network": "0.0.0.0/0", "peer_groups": []string{"exits"}, "groups": []string{"All"}, "auto_apply": true}, 201, &exit)
	if !exit.ExitNode || exit.Peer != nil || exit.PeerGroups[0].Name != "exits" || !exit.AutoApply {
		t.Fatalf("exit route: %+v", exit)
	}
	for _, bad := range []struct{ body, msg string }{
		{`{"network":"10.20.0.1/24","peer":"gw","groups":["All"]}`, "did you mean 10.20.0.0/24"},
		{`{"network":"10.20.0.0","peer":"gw","groups":["All"]}`, "expected a CIDR prefix"},
		{`{"network":"10.20.0.0/24","groups":["All"]}`, "exactly one of"},
		{`{"network":"10.20.0.0/24","peer":"gw","peer_groups":["exits"],"groups":["All"]}`, "exactly one of"},
		{`{"network":"10.20.0.0/24","peer":"ghost","groups":["All"]}`, `peer: unknown peer "ghost"`},
		{`{"network":"10.20.0.0/24","peer":"gw"}`, "distribution group"},
		{`{"network":"10.20.0.0/24","peer":"gw","groups":["All"],"metric":10000}`, "metric must be between"},
		{`{"network":"10.20.0.0/24","peer":"gw","groups":["All"],"metric":"high"}`, `field "metric"`},
	} {
		e.fails("POST", "/api/routes", bad.body, 400, codeInvalid, bad.msg)
		e.fails("PUT", "/api/routes/"+r.ID, bad.body, 400, codeInvalid, bad.msg)
	}
	var upd routeView
	e.must("PUT", "/api/routes/"+r.ID, map[string]any{"network": "10.30.0.0/16", "peer": map[string]string{"id": gw.ID}, "groups": []string{"exits"}, "enabled": false}, 200, &upd)
	if upd.ID != r.ID || upd.Network != "10.30.0.0/16" || upd.Enabled || upd.Metric != 0 {
		t.Fatalf("updated: %+v", upd)
	}
	var list []routeView
	e.must("GET", "/api/routes", nil, 200, &list)
	if len(list) != 2 || list[0].ID != exit.ID {
		t.Fatalf("list: %+v", list)
	}
	e.must("DELETE", "/api/routes/"+r.ID, nil, 204, nil)
	e.fails("GET", "/api/routes/"+r.ID, nil, 404, codeNotFound, "not found")
	// Deleting the gateway peer removes routes it serves alone.
	e.must("POST", "/api/routes", map[string]any{"network": "10.40.0.0/24", "peer": "gw", "groups": []string{"All"}}, 201, &r)
	e.must("DELETE", "/api/peers/gw", nil, 204, nil)
	e.fails("GET", "/api/routes/"+r.ID, nil, 404, codeNotFound, "not found")
}

// TestRouteNetworkRefused: a route whose network overlaps the overlay or a
// reserved range, or a /0 other than 0.0.0.0/0 and ::/0, is 400
// invalid_argument on create and on update, and nothing is stored.
func TestRouteNetworkRefused(t *testing.T) {
	e := newEnv(t)
	key := e.setupKey()
	e.addPeer(key, "gw")
	var acct accountView
	e.must("GET", "/api/accounts/"+e.acct, nil, 200, &acct)
	if acct.Network != "100.64.0.0/16" {
		t.Fatalf("account network %s", acct.Network)
	}
	body := func(network string) map[string]any {
		return map[string]any{"network": network, "peer": "gw", "groups": []string{"All"}}
	}

	// The case of the report: the account's own /16.
	e.fails("POST", "/api/routes", body("100.64.0.0/16"), 400, codeInvalid, "overlaps the overlay range 100.64.0.0/10")
	var list []routeView
	e.must("GET", "/api/routes", nil, 200, &list)
	if len(list) != 0 {
		t.Fatalf("refused route was stored: %+v", list)
	}

	var r routeView
	e.must("POST", "/api/routes", body("10.20.0.0/24"), 201, &r)
	for _, bad := range []struct{ network, msg string }{
		{"100.64.0.0/16", "overlaps the overlay range"},
		{"100.64.0.0/10", "overlaps the overlay range"},
		{"100.64.7.0/24", "overlaps the overlay range"},
		{"100.64.0.1/32", "overlaps the overlay range"},
		{"100.66.0.0/16", "overlaps the overlay range"},
		{"100.0.0.0/8", "overlaps the overlay range"},
		{"64.0.0.0/2", "overlaps the overlay range"},
		{"10.0.0.0/0", "an exit node is 0.0.0.0/0 or ::/0"},
		{"2001:db8::/0", "an exit node is 0.0.0.0/0 or ::/0"},
		{"127.0.0.0/8", "loopback"},
		{"::1/128", "loopback"},
		{"169.254.0.0/16", "link-local"},
		{"fe80::/10", "link-local"},
		{"224.0.0.0/4", "multicast"},
		{"ff00::/8", "multicast"},
		{"::ffff:10.0.0.0/104", "IPv4-mapped"},
		{"10.20.0.0/33", "expected a CIDR prefix"},
		{"not-a-network", "expected a CIDR prefix"},
		{"", "expected a CIDR prefix"},
	} {
		e.fails("POST", "/api/routes", body(bad.network), 400, codeInvalid, bad.msg)
		// An update that would introduce the same network is refused too.
		e.fails("PUT", "/api/routes/"+r.ID, body(bad.network), 400, codeInvalid, bad.msg)
	}
	var got routeView
	e.must("GET", "/api/routes/"+r.ID, nil, 200, &got)
	e.must("GET", "/api/routes", nil, 200, &list)
	if got.Network != "10.20.0.0/24" || len(list) != 1 {
		t.Fatalf("after refused requests: route %+v, %d routes", got, len(list))
	}
	// Neighbours of the refused ranges are fine, and so are the exit nodes.
	for _, ok := range []string{"100.63.255.0/24", "100.128.0.0/16", "0.0.0.0/0", "::/0", "2001:db8::/48"} {
		e.must("PUT", "/api/routes/"+r.ID, body(ok), 200, &got)
		if got.Network != ok {
			t.Fatalf("PUT %s stored %s", ok, got.Network)
		}
	}
}

func TestDNS(t *testing.T) {
	e := newEnv(t)
	var ns nameserverGroupView
	e.must("POST", "/api/dns/nameservers", map[string]any{"name": "corp", "nameservers": []string{"10.0.0.53", "[2001:db8::53]:5353"},
		"domains": []string{"Corp.Example."}, "groups": []string{"All"}}, 201, &ns)
	if ns.ID == "" || strings.Join(ns.Nameservers, ",") != "10.0.0.53:53,[2001:db8::53]:5353" || ns.Domains[0] != "corp.example" || !ns.Enabled || ns.Groups[0].Name != "All" {
		t.Fatalf("nameserver group: %+v", ns)
	}
	for _, bad := range []struct{ body, msg string }{
		{`{"name":"x","nameservers":["dns.google"],"primary":true,"groups":["All"]}`, `nameservers[0]: nameserver "dns.google"`},
		{`{"name":"x","nameservers":["1.1.1.1:0"],"primary":true,"groups":["All"]}`, "port must not be 0"},
		{`{"name":"x","nameservers":[],"primary":true,"groups":["All"]}`, "at least one is required"},
		{`{"name":"x","nameservers":["1.1.1.1"],"groups":["All"]}`, "primary"},
		{`{"name":"x","nameservers":["1.1.1.1"],"primary":true}`, "groups: at least one group"},
		{`{"name":"x","nameservers":["1.1.1.1"],"primary":true,"groups":["nope"]}`, `unknown group "nope"`},
		{`{"name":"x","nameservers":["1.1.1.1"],"domains":["bad domain"],"groups":["All"]}`, "not a valid domain"},
	} {
		e.fails("POST", "/api/dns/nameservers", bad.body, 400, codeInvalid, bad.msg)
		e.fails("PUT", "/api/dns/nameservers/"+ns.ID, bad.body, 400, codeInvalid, bad.msg)
	}
	e.must("PUT", "/api/dns/nameservers/"+ns.ID, map[string]any{"name": "all", "nameservers": []string{"1.1.1.1:53"}, "primary": true, "groups": []string{"All"}}, 200, &ns)
	if ns.Name != "all" || !ns.Primary || len(ns.Domains) != 0 {
		t.Fatalf("updated ns: %+v", ns)
	}
	var nsl []nameserverGroupView
	e.must("GET", "/api/dns/nameservers", nil, 200, &nsl)
	if len(nsl) != 1 {
		t.Fatalf("ns list: %+v", nsl)
	}
	e.must("GET", "/api/dns/nameservers/"+ns.ID, nil, 200, nil)
	e.must("DELETE", "/api/dns/nameservers/"+ns.ID, nil, 204, nil)
	e.fails("DELETE", "/api/dns/nameservers/"+ns.ID, nil, 404, codeNotFound, "not found")

	var z zoneView
	e.must("POST", "/api/dns/zones", map[string]any{"domain": "Lab.Example.", "records": []any{
		map[string]any{"name": "db", "type": "a", "value": "10.0.0.5", "ttl": 60},
		map[string]any{"name": "", "type": "TXT", "value": "hello"},
	}}, 201, &z)
	if z.ID == "" || z.Domain != "lab.example" || len(z.Records) != 2 || z.Records[0].Type != "A" || z.Records[1].Name != "@" || z.Records[1].TTL != 300 {
		t.Fatalf("zone: %+v", z)
	}
	for _, bad := range []struct {
		body   string
		status int
		code   string
		msg    string
	}{
		{`{"domain":"","records":[]}`, 400, codeInvalid, "domain is required"},
		{`{"domain":"x.example","records":[{"name":"a","type":"MX","value":"x"}]}`, 400, codeInvalid, `type "MX" not supported`},
		{`{"domain":"x.example","records":[{"name":"a","type":"A","value":"::1"}]}`, 400, codeInvalid, "not an IPv4 address"},
		{`{"domain":"x.example","records":[{"name":"a","type":"A","value":"1.2.3.4","ttl":-1}]}`, 400, codeInvalid, `field "records.ttl"`},
		{`{"domain":"x.example","records":[{"name":"a","type":"A","value":"1.2.3.4","class":"IN"}]}`, 400, codeInvalid, `unknown field "class"`},
		{`{"domain":"petrel.internal"}`, 409, codeConflict, "peer domain"},
	} {
		e.fails("POST", "/api/dns/zones", bad.body, bad.status, bad.code, bad.msg)
	}
	e.fails("POST", "/api/dns/zones", `{"domain":"lab.example"}`, 409, codeConflict, "already exists")
	e.must("PUT", "/api/dns/zones/"+z.ID, map[string]any{"domain": "lab.example", "records": []any{}}, 200, &z)
	if len(z.Records) != 0 {
		t.Fatalf("updated zone: %+v", z)
	}
	var zl []zoneView
	e.must("GET", "/api/dns/zones", nil, 200, &zl)
	if len(zl) != 1 {
		t.Fatalf("zones: %+v", zl)
	}
	e.must("DELETE", "/api/dns/zones/"+z.ID, nil, 204, nil)
	e.fails("GET", "/api/dns/zones/"+z.ID, nil, 404, codeNotFound, "not found")

	// Settings: the peer domain changes every FQDN.
	key := e.setupKey()
	e.addPeer(key, "box")
	var s map[string]string
	e.must("GET", "/api/dns/settings", nil, 200, &s)
	if s["dns_domain"] != "petrel.internal" {
		t.Fatalf("settings: %v", s)
	}
	e.must("PUT", "/api/dns/settings", `{"dns_domain": "Mesh.Example."}`, 200, &s)
	if s["dns_domain"] != "mesh.example" {
		t.Fatalf("settings: %v", s)
	}
	var pv peerView
	e.must("GET", "/api/peers/box.mesh.example", nil, 200, &pv)
	if pv.FQDN != "box.mesh.example" {
		t.Fatalf("fqdn: %+v", pv)
	}
	e.fails("PUT", "/api/dns/settings", `{}`, 400, codeInvalid, "dns_domain is required")
	e.fails("PUT", "/api/dns/settings", `{"dns_domain": ""}`, 400, codeInvalid, "must not be empty")
	e.fails("PUT", "/api/dns/settings", `{"dns_domain": "bad domain"}`, 400, codeInvalid, "domain")
	e.fails("PUT", "/api/dns/settings", `{"dns_domain": "x.example", "ttl": 5}`, 400, codeInvalid, `unknown field "ttl"`)
}
