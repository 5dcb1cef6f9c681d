package policyfile

import (
	"context"
	"strings"
	"testing"
)

// An exported live state parses and plans to no changes, with prune.
func TestExportRoundTrip(t *testing.T) {
	api := liveFixture()
	api.get["/api/peers"] = strings.Replace(api.get["/api/peers"], `"name":"laptop"`, `"name":"GW-1"`, 1) // a shared name
	api.get["/api/groups"] = strings.Replace(api.get["/api/groups"], `"peers":[]`, `"peers":[{"id":"p2","name":"GW-1"}]`, 1)
	api.get["/api/routes"] = `[{"id":"r1","network":"10.0.0.0/8","network_id":"lan","peer":{"id":"p1","name":"gw-1"},
		"groups":[{"id":"gO","name":"office"}],"metric":10,"enabled":false},
		{"id":"r2","network":"0.0.0.0/0","network_id":"0.0.0.0/0","peer_groups":[{"id":"gO","name":"office"}],"groups":[{"id":"gA","name":"All"}],"enabled":true}]`
	api.get["/api/dns/nameservers"] = `[{"id":"n1","name":"corp","nameservers":["10.0.0.53:53"],"domains":["corp.example"],"groups":[{"id":"gA","name":"All"}],"enabled":true}]`
	api.get["/api/dns/zones"] = `[{"id":"z1","domain":"lab.example","records":[{"name":"db","type":"A","value":"10.1.2.3","ttl":60}]}]`
	ls, err := FetchLive(context.Background(), api)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Export(ls).YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"  - name: stray\n    peers:\n      - laptop.petrel.internal\n", "    peer: gw-1.petrel.internal\n",
		"    enabled: false\n", "    network_id: lan\n", "dns_domain: petrel.internal"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("export lacks %q:\n%s", want, b)
		}
	}
	f, err := Parse(b)
	if err != nil {
		t.Fatalf("parse the export: %v\n%s", err, b)
	}
	p, err := MakePlan(f, ls, true)
	if err != nil {
		t.Fatalf("plan the export: %v\n%s", err, b)
	}
	if len(p.Changes()) != 0 {
		t.Fatalf("the export plans changes:\n%s\n%s", planText(p), b)
	}
}
