package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// snapshot is everything apply may change, as the API returns it.
func (a *admin) snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{{"groups", "list"}, {"policies", "list"}, {"routes", "list"},
		{"dns", "nameservers", "list"}, {"dns", "zones", "list"}, {"dns", "settings", "show"}, {"setup-keys", "list"}} {
		b.WriteString(a.ok(t, append(args, "--json")...))
	}
	return b.String()
}

const networkFile = `groups:
  - name: laptops
    peers: [laptop]
  - name: gateways
    peers: [gw-1]
policies:
  - name: laptops-to-office
    rules:
      - name: web
        sources: [laptops]
        destinations: [gateways]
        protocol: tcp
        ports: [443, "80"]
      - name: ping
        sources: [Laptops]
        destinations: [gateways]
        protocol: icmp
routes:
  - network: 10.20.0.0/24
    peer: gw-1
    groups: [laptops]
    metric: 100
    masquerade: true
dns:
  settings:
    dns_domain: mesh.example
  nameservers:
    - name: office
      nameservers: [10.20.0.53]
      domains: [Office.Example.]
      groups: [laptops]
  zones:
    - domain: lab.example
      records:
        - {name: db, type: a, value: 10.20.0.5}
`

// changeLines are the lines of apply's output that announce a change.
var changeLines = regexp.MustCompile(`(?m)^[+~-] .*$`)

func TestPolicyApply(t *testing.T) {
	a := startAdmin(t)
	a.peer(t, "gw-1")
	a.peer(t, "laptop")
	file := writeFile(t, "network.yaml", networkFile)

	// --dry-run prints the diff and changes nothing.
	before := a.snapshot(t)
	out := a.ok(t, "policies", "apply", "-f", file, "--dry-run")
	for _, want := range []string{
		"+ group laptops\n    name: laptops\n    peers: laptop\n",
		"+ policy laptops-to-office\n    name: laptops-to-office\n    enabled: true\n    rules[0].name: web\n    rules[0].sources: laptops\n",
		"    rules[0].ports: 80, 443\n",
		"+ route 10.20.0.0/24 via gw-1\n",
		"~ dns settings\n    dns_domain: petrel.internal → mesh.example\n",
		"+ nameserver group office\n    name: office\n    nameservers: 10.20.0.53:53\n    domains: office.example\n",
		"+ zone lab.example\n    domain: lab.example\n    records: db 300 A 10.20.0.5\n",
		"not in the file, kept (--prune deletes them): policy Default\n",
		"6 to create, 1 to update, 0 to delete\ndry run: nothing was changed\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if after := a.snapshot(t); after != before {
		t.Fatalf("--dry-run changed the state:\n%s\n%s", before, after)
	}

	// apply creates, groups first.
	out = a.ok(t, "policies", "apply", "-f", file)
	if !strings.Contains(out, "created group laptops\ncreated group gateways\nupdated dns settings (dns_domain)\n"+
		"created nameserver group office\ncreated zone lab.example\ncreated policy laptops-to-office\ncreated route 10.20.0.0/24 via gw-1\n"+
		"applied: 6 created, 1 updated, 0 deleted\n") {
		t.Fatalf("apply:\n%s", out)
	}
	var p policyJSON
	a.jsonOf(t, &p, "policies", "show", "laptops-to-office")
	if len(p.Rules) != 2 || p.Rules[0].summary() != "laptops -> gateways tcp/443,80 accept" {
		t.Fatalf("applied policy: %+v", p)
	}
	var r routeJSON
	a.jsonOf(t, &r, "routes", "show", "10.20.0.0/24")
	if r.via() != "gw-1" || r.Metric != 100 || !r.Masquerade || joinNames(r.Groups) != "laptops" {
		t.Fatalf("applied route: %+v", r)
	}

	// Re-applying is a no-op, from YAML and from the same file as JSON.
	applied := a.snapshot(t)
	if out := a.ok(t, "policies", "apply", "-f", file); out != "not in the file, kept (--prune deletes them): policy Default\nno changes\n" {
		t.Fatalf("re-apply:\n%s", out)
	}
	var doc any
	if err := yaml.Unmarshal([]byte(networkFile), &doc); err != nil {
		t.Fatal(err)
	}
	asJSON, _ := json.MarshalIndent(doc, "", "\t")
	if out := a.ok(t, "policies", "apply", "-f", writeFile(t, "network.json", string(asJSON))); !strings.HasSuffix(out, "no changes\n") {
		t.Fatalf("re-apply as JSON:\n%s", out)
	}
	// A group without "peers" leaves its membership alone.
	unmanaged := strings.Replace(networkFile, "    peers: [laptop]\n", "", 1)
	if out := a.ok(t, "policies", "apply", "-f", writeFile(t, "unmanaged.yaml", unmanaged)); !strings.HasSuffix(out, "no changes\n") {
		t.Fatalf("apply without peers:\n%s", out)
	}
	if after := a.snapshot(t); after != applied {
		t.Fatalf("a no-op apply changed the state:\n%s\n%s", applied, after)
	}

	// Editing the file updates exactly what changed; rule IDs are kept.
	var groupsBefore, groupsAfter string
	groupsBefore = a.ok(t, "groups", "list", "--json")
	var rulesBefore, rulesAfter struct {
		Rules []struct{ ID string } `json:"rules"`
	}
	a.jsonOf(t, &rulesBefore, "policies", "show", "laptops-to-office")
	edited := strings.NewReplacer(`ports: [443, "80"]`, "ports: [443, 8443]", "metric: 100", "metric: 50").Replace(networkFile)
	out = a.ok(t, "policies", "apply", "-f", writeFile(t, "edited.yaml", edited))
	got := strings.Join(changeLines.FindAllString(out, -1), "\n")
	if got != "~ policy laptops-to-office\n~ route 10.20.0.0/24 via gw-1" ||
		!strings.Contains(out, "    rules[0].ports: +8443 -80\n") || !strings.Contains(out, "    metric: 100 → 50\n") ||
		!strings.Contains(out, "updated policy laptops-to-office (rules)\nupdated route 10.20.0.0/24 via gw-1 (metric)\n") {
		t.Fatalf("apply of the edited file:\n%s", out)
	}
	a.jsonOf(t, &rulesAfter, "policies", "show", "laptops-to-office")
	if len(rulesAfter.Rules) != 2 || rulesAfter.Rules[0].ID != rulesBefore.Rules[0].ID || rulesAfter.Rules[1].ID != rulesBefore.Rules[1].ID {
		t.Fatalf("rule IDs changed: %+v -> %+v", rulesBefore, rulesAfter)
	}
	a.jsonOf(t, &r, "routes", "show", "10.20.0.0/24")
	if r.Metric != 50 || !r.Masquerade {
		t.Fatalf("route after the edit: %+v", r)
	}
	if groupsAfter = a.ok(t, "groups", "list", "--json"); groupsAfter != groupsBefore {
		t.Fatalf("groups changed although the file did not change them")
	}

	// --prune deletes what the file's sections do not list, dependents
	// first; a group some setup key uses cannot be pruned.
	a.ok(t, "groups", "create", "--name", "stray")
	a.ok(t, "groups", "create", "--name", "keyed")
	a.ok(t, "setup-keys", "create", "--name", "k", "--group", "keyed")
	a.ok(t, "policies", "create", "--name", "stray-policy", "--src", "stray", "--dst", "All")
	beforePrune := a.snapshot(t)
	a.fails(t, 2, `group "keyed" is not in the file, but --prune cannot delete it: setup key "k" uses it`,
		"policies", "apply", "-f", writeFile(t, "edited.yaml", edited), "--prune")
	if after := a.snapshot(t); after != beforePrune {
		t.Fatal("a refused --prune changed the state")
	}
	a.ok(t, "setup-keys", "delete", "k")
	out = a.ok(t, "policies", "apply", "-f", writeFile(t, "edited.yaml", edited), "--prune")
	got = strings.Join(changeLines.FindAllString(out, -1), "\n")
	if got != "- policy Default\n- policy stray-policy\n- group keyed\n- group stray" ||
		!strings.Contains(out, "applied: 0 created, 0 updated, 4 deleted\n") {
		t.Fatalf("apply --prune:\n%s", out)
	}
	if out := a.ok(t, "groups", "list"); strings.Contains(out, "stray") || !strings.Contains(out, "All ") {
		t.Fatalf("groups after --prune:\n%s", out)
	}
	if out := a.ok(t, "policies", "apply", "-f", writeFile(t, "edited.yaml", edited), "--prune"); out != "no changes\n" {
		t.Fatalf("re-apply --prune:\n%s", out)
	}
}

func TestPolicyApplyRefusesBeforeChanging(t *testing.T) {
	a := startAdmin(t)
	a.peer(t, "gw-1")
	a.peer(t, "laptop")
	a.ok(t, "groups", "create", "--name", "gateways")
	a.ok(t, "policies", "create", "--name", "dup", "--src", "All", "--dst", "All")
	a.ok(t, "policies", "create", "--name", "dup", "--src", "All", "--dst", "All")
	before := a.snapshot(t)
	for _, tc := range []struct {
		name, file string
		args       []string
		msg        []string
	}{
		{"unknown group", strings.Replace(networkFile, "sources: [laptops]", "sources: [ghost]", 1), nil,
			[]string{`policies[0] "laptops-to-office": rules[0]: sources[0]: unknown group "ghost" (neither in the file nor on the server)`}},
		{"unknown peer and bad port", strings.NewReplacer("peer: gw-1", "peer: gw-9", `"80"`, `"http"`).Replace(networkFile), nil,
			[]string{`routes[0] "10.20.0.0/24 via gw-9": peer: unknown peer "gw-9"`, `rules[0]: bad port "http"`}},
		{"group pruned but used", strings.Replace(networkFile, "  - name: gateways\n    peers: [gw-1]\n", "", 1), []string{"--prune"},
			[]string{`group "gateways" is not in the file, so --prune would delete it`}},
		{"listed twice", strings.Replace(networkFile, "  - name: gateways\n", "  - name: Laptops\n", 1), nil,
			[]string{`group "Laptops" is listed twice`}},
		{"ambiguous live object", "policies:\n  - name: dup\n    rules: [{sources: [All], destinations: [All]}]\n", nil,
			[]string{`policy "dup": 2 of them exist on the server (ids `}},
		{"null section", "groups:\npolicies: []\n", nil, []string{"line 1: groups is null"}},
		{"unknown key", "groups:\n  - name: a\n    colour: red\n", nil, []string{`line 3: unknown key "colour"`}},
		{"the All group", "groups:\n  - name: All\n    peers: []\n", nil, []string{"the All group holds every peer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.run(t, append([]string{"policies", "apply", "-f", writeFile(t, "f.yaml", tc.file)}, tc.args...)...)
			if exitStatus(err) != 2 {
				t.Fatalf("exit %d, want 2: %v", exitStatus(err), err)
			}
			for _, m := range tc.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error lacks %q:\n%v", m, err)
				}
			}
			if after := a.snapshot(t); after != before {
				t.Fatal("a refused file changed the state")
			}
		})
	}
	a.fails(t, 1, "read policy file", "policies", "apply", "-f", filepath.Join(t.TempDir(), "missing.yaml"))
}

// A step the server refuses stops apply, which says what was applied.
func TestPolicyApplyStopsAtFailure(t *testing.T) {
	a := startAdmin(t)
	a.peer(t, "gw-1")
	file := writeFile(t, "f.yaml", `groups:
  - name: office
routes:
  - network: 100.64.5.0/24
    peer: gw-1
    groups: [office]
  - network: 10.9.0.0/16
    peer: gw-1
    groups: [office]
`)
	_, err := a.run(t, "policies", "apply", "-f", file)
	for _, want := range []string{
		"apply stopped at step 2 of 3, create route 100.64.5.0/24 via gw-1: server answered 400: route network 100.64.5.0/24 overlaps",
		"\n  applied (1): create group office\n",
		"\n  not applied (2): create route 100.64.5.0/24 via gw-1; create route 10.9.0.0/16 via gw-1",
	} {
		if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want exit 1 with %q", err, want)
		}
	}
	a.ok(t, "groups", "show", "office")
	if out := a.ok(t, "routes", "list", "--json"); out != "[]\n" {
		t.Fatalf("routes after the failed step: %s", out)
	}
}

// The example in docs/examples applies to a fresh server (with the peers
// it does not create left out) and re-applies as a no-op.
func TestPolicyApplyExample(t *testing.T) {
	a := startAdmin(t)
	file := filepath.Join("..", "..", "docs", "examples", "policy.yaml")
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
	a.ok(t, "policy", "apply", "-f", file, "--dry-run") // the spelling
	if out := a.ok(t, "policies", "apply", "-f", file); !strings.Contains(out, "applied: ") {
		t.Fatalf("apply example:\n%s", out)
	}
	if out := a.ok(t, "policies", "apply", "-f", file); !strings.HasSuffix(out, "no changes\n") {
		t.Fatalf("re-apply example:\n%s", out)
	}
}
