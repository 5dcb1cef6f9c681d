package restapi

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"petrel/management/model"
)

// fuzzResolver is a fixed account: peers alpha and two named "twin"
// (ambiguous), groups All and web.
func fuzzResolver() resolver {
	a := model.NewAccount("acct", netip.MustParsePrefix("100.64.0.0/16"), time.Unix(0, 0))
	for _, p := range []*model.Peer{
		{ID: "p1", Name: "alpha", DNSLabel: "alpha", IP: netip.MustParseAddr("100.64.0.1")},
		{ID: "p2", Name: "twin", DNSLabel: "twin", IP: netip.MustParseAddr("100.64.0.2")},
		{ID: "p3", Name: "twin", DNSLabel: "twin-2", IP: netip.MustParseAddr("100.64.0.3")},
	} {
		a.Peers[p.ID] = p
	}
	a.Groups["g0"] = &model.Group{ID: "g0", Name: model.AllGroupName, PeerIDs: []string{"p1", "p2", "p3"}}
	a.Groups["g1"] = &model.Group{ID: "g1", Name: "web", PeerIDs: []string{"p1"}}
	return resolver{a: a}
}

// check4xx fails unless err is nil or classified as a 4xx.
func check4xx(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	e, internal := toAPIError(err)
	if internal || e.status < 400 || e.status > 499 || e.code == "" || e.msg == "" {
		t.Fatalf("decode error %v classified as %d %q", err, e.status, e.code)
	}
}

func knownGroups(t *testing.T, r resolver, ids ...[]string) {
	t.Helper()
	for _, list := range ids {
		for _, id := range list {
			if r.a.Groups[id] == nil {
				t.Fatalf("decoded unknown group id %q", id)
			}
		}
	}
}

func FuzzDecodeGroup(f *testing.F) {
	f.Add([]byte(`{"name":"web","peers":["alpha",{"id":"p2"},"100.64.0.3"]}`))
	r := fuzzResolver()
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := decodeGroup(r, b)
		check4xx(t, err)
		if err == nil {
			for _, id := range g.PeerIDs {
				if r.a.Peers[id] == nil {
					t.Fatalf("decoded unknown peer id %q", id)
				}
			}
		}
	})
}

func FuzzDecodePeerUpdate(f *testing.F) {
	f.Add([]byte(`{"name":"Laptop","dns_label":"laptop"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodePeerUpdate(b)
		check4xx(t, err)
		if err == nil && req.Name == nil && req.DNSLabel == nil {
			t.Fatal("accepted an empty update")
		}
	})
}

func FuzzDecodeSetupKey(f *testing.F) {
	f.Add([]byte(`{"name":"ci","reusable":true,"usage_limit":5,"expires_in":"24h","auto_groups":["web"],"ephemeral":true}`))
	r := fuzzResolver()
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := decodeSetupKey(r, b)
		check4xx(t, err)
		if err == nil {
			if in.ExpiresIn < 0 || in.ExpiresIn > maxExpiresIn || in.UsageLimit < 0 {
				t.Fatalf("accepted %+v", in)
			}
			knownGroups(t, r, in.AutoGroups)
		}
	})
}

func FuzzDecodeSetupKeyUpdate(f *testing.F) {
	f.Add([]byte(`{"revoked":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeSetupKeyUpdate(b)
		check4xx(t, err)
		if err == nil && req.Revoked == nil {
			t.Fatal("accepted an update without revoked")
		}
	})
}

func FuzzDecodePolicy(f *testing.F) {
	f.Add([]byte(`{"name":"p","enabled":true,"rules":[{"sources":["web"],"destinations":["All"],"protocol":"tcp","ports":["80","8000-8080",443],"action":"accept"}]}`))
	r := fuzzResolver()
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePolicy(r, b)
		check4xx(t, err)
		if err == nil {
			for _, ru := range p.Rules {
				knownGroups(t, r, ru.Sources, ru.Destinations)
				for _, pr := range ru.Ports {
					if pr.Start == 0 || pr.End < pr.Start {
						t.Fatalf("accepted port range %+v", pr)
					}
				}
			}
		}
	})
}

func FuzzDecodeRoute(f *testing.F) {
	f.Add([]byte(`{"network":"10.20.0.0/24","peer":"alpha","groups":["All"],"metric":10,"masquerade":true}`))
	f.Add([]byte(`{"network":"::/0","peer_groups":["web"],"groups":[{"id":"g0"}],"auto_apply":true}`))
	r := fuzzResolver()
	f.Fuzz(func(t *testing.T, b []byte) {
		rt, err := decodeRoute(r, b)
		check4xx(t, err)
		if err == nil {
			if !rt.Network.IsValid() || rt.Network.Masked() != rt.Network || (rt.Peer == "") == (len(rt.PeerGroups) == 0) {
				t.Fatalf("accepted %+v", rt)
			}
			knownGroups(t, r, rt.PeerGroups, rt.Groups)
		}
	})
}

func FuzzDecodeNameserverGroup(f *testing.F) {
	f.Add([]byte(`{"name":"corp","nameservers":["10.0.0.53","[2001:db8::1]:5353"],"domains":["corp.example"],"groups":["All"]}`))
	r := fuzzResolver()
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decodeNameserverGroup(r, b)
		check4xx(t, err)
		if err == nil {
			for _, ns := range n.Nameservers {
				if !ns.IsValid() || ns.Port() == 0 {
					t.Fatalf("accepted nameserver %v", ns)
				}
			}
			knownGroups(t, r, n.Groups)
		}
	})
}

func FuzzDecodeZone(f *testing.F) {
	f.Add([]byte(`{"domain":"lab.example","records":[{"name":"db","type":"A","value":"10.0.0.5","ttl":60}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		z, err := decodeZone(b)
		check4xx(t, err)
		if err == nil && z.Domain == "" {
			t.Fatal("accepted an empty domain")
		}
	})
}

func FuzzDecodeSettings(f *testing.F) {
	f.Add([]byte(`{"dns_domain":"mesh.example"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSettings(model.Settings{DNSDomain: "petrel.internal"}, b)
		check4xx(t, err)
		if err == nil && s.DNSDomain == "" {
			t.Fatal("accepted an empty domain")
		}
	})
}

func FuzzDecodeDNSSettings(f *testing.F) {
	f.Add([]byte(`{"dns_domain":"mesh.example"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cur := model.Settings{DNSDomain: "petrel.internal", LoginExpiration: time.Hour}
		s, err := decodeDNSSettings(cur, b)
		check4xx(t, err)
		if err == nil && (s.DNSDomain == "" || s.LoginExpiration != time.Hour) {
			t.Fatalf("accepted %+v", s)
		}
	})
}

func FuzzDecodeTokenRequest(f *testing.F) {
	f.Add([]byte(`{"name":"ci","expires_in":3600}`))
	f.Add([]byte(`{"name":"ci","expires_in":"30d"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := decodeTokenRequest(b)
		check4xx(t, err)
		if err == nil && (in.Name == "" || in.ExpiresIn < 0 || in.ExpiresIn > maxExpiresIn) {
			t.Fatalf("accepted %+v", in)
		}
	})
}

func FuzzDecodeUserUpdate(f *testing.F) {
	f.Add([]byte(`{"role":"admin","blocked":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		up, err := decodeUserUpdate(b)
		check4xx(t, err)
		if err == nil && (up.Role == nil && up.Blocked == nil || up.Role != nil && roleRank(*up.Role) == 0) {
			t.Fatalf("accepted %+v", up)
		}
	})
}

func FuzzEventQuery(f *testing.F) {
	f.Add("limit=10&before=5&actor=user:x&action=peer.&target_kind=peer&since=2026-01-01T00:00:00Z")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := decodeEventQuery(raw)
		check4xx(t, err)
		if err == nil && (q.Limit < 1 || q.Limit > maxEventLimit || q.Before < 0) {
			t.Fatalf("accepted %+v", q)
		}
	})
}

func FuzzCheckQuery(f *testing.F) {
	f.Add("src=alpha&dst=100.64.0.2&proto=tcp&port=443")
	r := fuzzResolver()
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := decodeCheckQuery(r, raw)
		check4xx(t, err)
		if err == nil && (q.src == nil || q.dst == nil) {
			t.Fatal("accepted a query without peers")
		}
	})
}

// FuzzStripReadOnly: any body is either left as it is (not one JSON object),
// refused with a 4xx, or stripped to a body of the same length that is
// still valid JSON and holds no read-only member.
func FuzzStripReadOnly(f *testing.F) {
	f.Add([]byte(`{"id":"a","name":"x","state":"valid","peers_count":2}`))
	f.Add([]byte(` { "state" : [1, {"id": 2}] , "id":"a" ,"name":"y" } `))
	ro := readOnly{fixed: []string{"id"}, derived: []string{"peers_count"}, live: []string{"state"}}
	stored := map[string]any{"id": "a", "peers_count": 2, "state": "valid"}
	f.Fuzz(func(t *testing.T, b []byte) {
		ed, err := ro.strip(b, stored)
		check4xx(t, err)
		if err != nil {
			return
		}
		if len(ed.body) != len(b) {
			t.Fatalf("length %d -> %d", len(b), len(ed.body))
		}
		members, ok := objectMembers(b)
		if !ok {
			if !bytes.Equal(ed.body, b) {
				t.Fatalf("changed a body that is not an object: %q -> %q", b, ed.body)
			}
			return
		}
		after, ok := objectMembers(ed.body)
		if !ok {
			t.Fatalf("stripped %q to invalid JSON %q", b, ed.body)
		}
		for _, m := range after {
			if m.key == "id" || m.key == "state" || m.key == "peers_count" {
				t.Fatalf("%q kept %q", ed.body, m.key)
			}
		}
		if len(after) > len(members) {
			t.Fatalf("members %d -> %d", len(members), len(after))
		}
	})
}

// FuzzMergePatch: a patch body is refused with a 4xx or is an object whose
// merge into a view always encodes.
func FuzzMergePatch(f *testing.F) {
	f.Add([]byte(`{"name":"x","peers":null,"meta":{"os":null}}`))
	f.Add([]byte(`[{"op":"add"}]`))
	target := map[string]any{"name": "a", "peers": []any{"p1"}, "meta": map[string]any{"os": "linux"}}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseMergePatch(b)
		check4xx(t, err)
		if err != nil {
			return
		}
		tv, err := toJSONValue(target)
		if err != nil {
			t.Fatal(err)
		}
		merged := mergePatch(tv, p)
		if _, ok := merged.(map[string]any); !ok {
			t.Fatalf("merged %q into a non-object", b)
		}
		if _, err := json.Marshal(merged); err != nil {
			t.Fatalf("merged %q does not encode: %v", b, err)
		}
	})
}

// roleRank orders roles; 0 is no role.
func roleRank(r model.Role) int {
	switch r {
	case model.RoleOwner:
		return 3
	case model.RoleAdmin:
		return 2
	case model.RoleUser:
		return 1
	}
	return 0
}
