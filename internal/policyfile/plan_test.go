package policyfile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// fakeAPI is a Client over canned GET answers; it records the requests
// Send gets and fails the one numbered failAt (1-based; 0: none).
type fakeAPI struct {
	get    map[string]string
	sent   []string
	failAt int
}

func (f *fakeAPI) Get(_ context.Context, path string, out any) error {
	body, ok := f.get[path]
	if !ok {
		body = "[]"
	}
	return json.Unmarshal([]byte(body), out)
}

func (f *fakeAPI) Send(_ context.Context, method, path string, body []byte, ct string) ([]byte, error) {
	f.sent = append(f.sent, fmt.Sprintf("%s %s %s %s", method, path, ct, body))
	if len(f.sent) == f.failAt {
		return nil, errors.New("server answered 400: no")
	}
	if method == "POST" && path == "/api/groups" {
		return fmt.Appendf(nil, `{"id":"new-%d"}`, len(f.sent)), nil
	}
	return []byte(`{}`), nil
}

// liveFixture: peers gw-1 (p1) and laptop (p2); groups All, office (with
// gw-1) and stray; a policy "old"; DNS domain petrel.internal.
func liveFixture() *fakeAPI {
	return &fakeAPI{get: map[string]string{
		"/api/peers": `[{"id":"p1","name":"gw-1","dns_label":"gw-1","ip":"100.64.0.1","fqdn":"gw-1.petrel.internal"},
			{"id":"p2","name":"laptop","dns_label":"laptop","ip":"100.64.0.2","fqdn":"laptop.petrel.internal"}]`,
		"/api/groups": `[{"id":"gA","name":"All","implicit":true,"peers":[{"id":"p1","name":"gw-1"},{"id":"p2","name":"laptop"}]},
			{"id":"gO","name":"office","peers":[{"id":"p1","name":"gw-1"}]},{"id":"gS","name":"stray","peers":[]}]`,
		"/api/policies": `[{"id":"P1","name":"old","enabled":true,"rules":[{"id":"R1","name":"r","sources":[{"id":"gO","name":"office"}],
			"destinations":[{"id":"gA","name":"All"}],"protocol":"tcp","ports":["22"],"action":"accept"}]}]`,
		"/api/dns/settings": `{"dns_domain":"petrel.internal"}`,
	}}
}

func plan(t *testing.T, api *fakeAPI, file string, prune bool) (*Plan, error) {
	t.Helper()
	f, err := Parse([]byte(file))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	ls, err := FetchLive(context.Background(), api)
	if err != nil {
		t.Fatal(err)
	}
	return MakePlan(f, ls, prune)
}

func planText(p *Plan) string {
	var b strings.Builder
	WriteChanges(&b, p.Changes(), false)
	return b.String()
}

func TestMakePlan(t *testing.T) {
	const file = `groups:
  - name: office
    peers: [laptop, 100.64.0.1]
  - name: new
policies:
  - name: old
    rules:
      - {name: r, sources: [office], destinations: [All], protocol: tcp, ports: [22, 443]}
dns:
  settings: {dns_domain: Mesh.Example.}
`
	for _, tc := range []struct {
		name  string
		prune bool
		text  string
		kept  string
		sum   string
	}{
		{"keep", false, "~ group office\n    peers: +laptop\n+ group new\n    name: new\n" +
			"~ dns settings\n    dns_domain: petrel.internal → mesh.example\n~ policy old\n    rules[0].ports: +443\n",
			"group stray", "1 to create, 3 to update, 0 to delete"},
		{"prune", true, "~ group office\n    peers: +laptop\n+ group new\n    name: new\n" +
			"~ dns settings\n    dns_domain: petrel.internal → mesh.example\n~ policy old\n    rules[0].ports: +443\n- group stray\n",
			"", "1 to create, 3 to update, 1 to delete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := plan(t, liveFixture(), file, tc.prune)
			if err != nil {
				t.Fatal(err)
			}
			if got := planText(p); got != tc.text {
				t.Fatalf("plan:\n%s\nwant:\n%s", got, tc.text)
			}
			if got := strings.Join(p.Kept(), ", "); got != tc.kept || p.Summary(false) != tc.sum {
				t.Fatalf("kept %q, summary %q", got, p.Summary(false))
			}
		})
	}
}

// The plan as data: ops, kinds, names and field diffs.
func TestChangeData(t *testing.T) {
	p, err := plan(t, liveFixture(), "groups:\n  - name: office\n    peers: [laptop]\n  - name: new\n    peers: []\n", true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range p.Changes() {
		got = append(got, fmt.Sprintf("%s %s %s %q", c.Op().Symbol(), c.Kind(), c.Name(), c.Fields()))
	}
	want := []string{
		`~ group office [{"peers" "gw-1" "laptop" "peers: +laptop -gw-1"}]`,
		`+ group new [{"name" "" "new" "name: new"}]`,
		`- group stray []`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("changes:\n%s", strings.Join(got, "\n"))
	}
}

func TestMakePlanProblems(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		prune      bool
		want       []string
	}{
		{"unknown group and peer", "groups:\n  - name: g\n    peers: [nobody]\npolicies:\n  - name: x\n    rules: [{sources: [ghost], destinations: [All]}]\n",
			false, []string{`groups[0] "g": peers[0]: unknown peer "nobody"`, `policies[0] "x": rules[0]: sources[0]: unknown group "ghost"`}},
		{"pruned group in use", "groups:\n  - name: stray\n", true, []string{`group "office" is not in the file, but --prune cannot delete it: policy "old" uses it`}},
		{"listed twice", "groups:\n  - name: a\n  - name: A\n", false, []string{`group "A" is listed twice`}},
		{"All renamed", "groups:\n  - name: all\n", false, []string{"the All group cannot be renamed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plan(t, liveFixture(), tc.file, tc.prune)
			var ps Problems
			if !errors.As(err, &ps) || len(ps) != len(tc.want) {
				t.Fatalf("got %v, want %d problems", err, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(ps[i].Error(), w) {
					t.Errorf("problem %d: %v, want %q", i, ps[i], w)
				}
			}
		})
	}
}

// Apply sends the steps in order, with the IDs of the groups it created;
// the first failure stops it and says what was and was not applied.
func TestApply(t *testing.T) {
	const file = "groups:\n  - name: web\npolicies:\n  - name: old\n    rules: [{name: r, sources: [web], destinations: [All], protocol: tcp, ports: [22]}]\n"
	api := liveFixture()
	p, err := plan(t, api, file, true)
	if err != nil {
		t.Fatal(err)
	}
	var done []string
	if err := p.Apply(context.Background(), api, func(c Change) { done = append(done, c.Done()) }); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`POST /api/groups application/json {"name":"web"}`,
		`PATCH /api/policies/P1 application/merge-patch+json {"rules":[{"action":"accept","bidirectional":false,"destinations":["gA"],"id":"R1","name":"r","ports":["22"],"protocol":"tcp","sources":["new-1"]}]}`,
		`DELETE /api/groups/gO  `, `DELETE /api/groups/gS  `,
	}
	if strings.Join(api.sent, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s", strings.Join(api.sent, "\n"))
	}
	if strings.Join(done, "; ") != "created group web; updated policy old (rules); deleted group office; deleted group stray" {
		t.Fatalf("done: %v", done)
	}

	api = liveFixture()
	api.failAt = 2
	p, _ = plan(t, api, file, true)
	err = p.Apply(context.Background(), api, nil)
	var ae *ApplyError
	if !errors.As(err, &ae) || ae.Step != 1 || len(api.sent) != 2 || err.Error() !=
		"apply stopped at step 2 of 4, update policy old: server answered 400: no\n"+
			"  applied (1): create group web\n  not applied (3): update policy old; delete group office; delete group stray" {
		t.Fatalf("failed apply: %v (sent %d)", err, len(api.sent))
	}
}

// The fingerprint changes with the plan's text and with the IDs of the
// live objects it changes, not otherwise.
func TestFingerprint(t *testing.T) {
	const file = "groups:\n  - name: office\n    peers: [gw-1]\n"
	fp := func(api *fakeAPI, prune bool) string {
		p, err := plan(t, api, file, prune)
		if err != nil {
			t.Fatal(err)
		}
		return p.Fingerprint()
	}
	base := fp(liveFixture(), true)
	if fp(liveFixture(), true) != base {
		t.Fatal("the same plan has another fingerprint")
	}
	if fp(liveFixture(), false) == base {
		t.Fatal("prune does not change the fingerprint")
	}
	other := liveFixture()
	other.get["/api/groups"] = strings.Replace(other.get["/api/groups"], `"gS"`, `"gS2"`, 1)
	other.get["/api/policies"] = "[]"
	api := liveFixture()
	api.get["/api/policies"] = "[]"
	if fp(other, true) == fp(api, true) {
		t.Fatal("a plan deleting another object (same name) has the same fingerprint")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"groups: []\n", "groups:\n  - name: a\n    peers: [b]\n", "policies:\n  - rules: [{ports: [1-2]}]\n",
		"dns:\n  zones:\n", "{\"routes\": [{\"network\": \"10.0.0.0/8\"}]}", "- a\n", "groups: [\n", "a: &x [*x]\n"} {
		f.Add([]byte(s))
	}
	ls, err := FetchLive(context.Background(), liveFixture())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pf, err := Parse(b)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not Problems: %v", err)
			}
			return
		}
		for _, prune := range []bool{false, true} {
			if p, err := MakePlan(pf, ls, prune); err == nil {
				_ = p.Fingerprint()
			}
		}
	})
}
