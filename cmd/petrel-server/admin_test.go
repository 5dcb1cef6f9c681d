package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"petrel/client/mgmt"
	"petrel/internal/keys"
	"petrel/proto/managementpb"
	"petrel/server"
)

// admin is a management server on loopback (real store, real REST API)
// and the flags the admin commands need to reach it.
type admin struct {
	base, tokenFile string
}

// startAdmin starts a management-only server.New in-process; it is
// stopped at cleanup.
func startAdmin(t *testing.T) *admin {
	t.Helper()
	dir := t.TempDir()
	srv, err := server.New(server.Config{DataDir: dir, Listen: "127.0.0.1:0", STUNListen: "127.0.0.1:0",
		Components: server.Components{Management: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return &admin{base: "http://" + srv.Addr().String(), tokenFile: srv.TokenFile()}
}

// run runs an admin command with --server and --token-file added.
func (a *admin) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return cli(t, append(args, "--server", a.base, "--token-file", a.tokenFile)...)
}

// ok runs an admin command that must succeed and returns its output.
func (a *admin) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, err := a.run(t, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// fails runs an admin command that must fail with exit status code and an
// error containing msg.
func (a *admin) fails(t *testing.T, code int, msg string, args ...string) {
	t.Helper()
	_, err := a.run(t, args...)
	if err == nil || exitCode(err) != code || !strings.Contains(err.Error(), msg) {
		t.Fatalf("%s: got %v (exit %d), want exit %d with %q", strings.Join(args, " "), err, exitStatus(err), code, msg)
	}
}

// regexpLine reports whether a line of s matches re.
func regexpLine(s, re string) bool {
	return regexp.MustCompile("(?m)" + re).MatchString(s)
}

func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	return exitCode(err)
}

// jsonOf runs a command with --json and decodes its output.
func (a *admin) jsonOf(t *testing.T, out any, args ...string) {
	t.Helper()
	raw := a.ok(t, append(args, "--json")...)
	reflect.ValueOf(out).Elem().SetZero() // members the answer lacks must not survive
	if err := json.Unmarshal([]byte(raw), out); err != nil {
		t.Fatalf("%s --json: %v\n%s", strings.Join(args, " "), err, raw)
	}
}

// peer registers a peer named hostname with a fresh setup key.
func (a *admin) peer(t *testing.T, hostname string) {
	t.Helper()
	key := strings.TrimSpace(a.ok(t, "setup-keys", "create", "--name", "for-"+hostname))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	mc, err := mgmt.Dial(ctx, a.base)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	priv, _ := keys.NewPrivate()
	if _, err := mc.Login(ctx, priv, &managementpb.LoginRequest{SetupKey: key, Hostname: hostname}); err != nil {
		t.Fatalf("login %s: %v", hostname, err)
	}
}

// writeFile writes a test input file.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// yamlMatchesJSON checks that show's YAML reads back as the --json
// document.
func yamlMatchesJSON(t *testing.T, yamlOut, jsonOut string) {
	t.Helper()
	var fromYAML, fromJSON any
	if err := yaml.Unmarshal([]byte(yamlOut), &fromYAML); err != nil {
		t.Fatalf("show output is not YAML: %v\n%s", err, yamlOut)
	}
	if err := json.Unmarshal([]byte(jsonOut), &fromJSON); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(fromYAML)
	b, _ := json.Marshal(fromJSON)
	if string(a) != string(b) {
		t.Fatalf("show YAML and --json differ:\n%s\n%s", a, b)
	}
}

func TestAdminGroups(t *testing.T) {
	a := startAdmin(t)
	a.peer(t, "alpha")
	a.peer(t, "beta")

	if out := a.ok(t, "groups", "create", "--name", "web", "--peer", "alpha"); !strings.HasPrefix(out, "created group web (id ") {
		t.Fatalf("create: %q", out)
	}
	out := a.ok(t, "groups", "list")
	if !strings.Contains(out, "NAME") || !regexpLine(out, `^web +1 +alpha +\S+$`) || !regexpLine(out, `^All +2 +\(every peer\)`) {
		t.Fatalf("list:\n%s", out)
	}
	var groups []groupJSON
	a.jsonOf(t, &groups, "groups", "list")
	if len(groups) != 2 || groups[1].Name != "web" || groups[1].PeersCount != 1 {
		t.Fatalf("list --json: %+v", groups)
	}

	// show by name; its YAML is the --json document.
	shown := a.ok(t, "groups", "show", "web")
	if !strings.Contains(shown, "name: web\n") || !strings.Contains(shown, "peers_count: 1\n") {
		t.Fatalf("show:\n%s", shown)
	}
	yamlMatchesJSON(t, shown, a.ok(t, "groups", "show", "web", "--json"))

	// Flags PATCH only what they name; list edits keep the rest.
	a.ok(t, "groups", "update", "web", "--name", "www")
	a.ok(t, "groups", "update", "www", "--add-peer", "beta")
	var g groupJSON
	a.jsonOf(t, &g, "groups", "show", "www")
	if g.Name != "www" || joinNames(g.Peers) != "alpha,beta" {
		t.Fatalf("after updates: %+v", g)
	}
	a.ok(t, "groups", "update", "www", "--remove-peer", "alpha")
	a.jsonOf(t, &g, "groups", "show", g.ID)
	if joinNames(g.Peers) != "beta" {
		t.Fatalf("after --remove-peer: %+v", g)
	}

	// -f: PUT of the whole (edited) document, YAML; and create from YAML.
	doc := writeFile(t, "g.yaml", strings.Replace(a.ok(t, "groups", "show", "www"), "name: www", "name: web", 1))
	a.ok(t, "groups", "update", "www", "-f", doc)
	a.jsonOf(t, &g, "groups", "show", "web")
	if joinNames(g.Peers) != "beta" {
		t.Fatalf("after update -f: %+v", g)
	}
	a.ok(t, "groups", "create", "-f", writeFile(t, "new.yaml", "name: db\npeers:\n  - alpha\n  - beta\n"))
	a.jsonOf(t, &g, "groups", "show", "db")
	if g.PeersCount != 2 {
		t.Fatalf("created from YAML: %+v", g)
	}

	// The server's error, verbatim; exit status 1.
	a.fails(t, 1, `create group: server answered 409: a group named "All" already exists`, "groups", "create", "--name", "all")
	a.fails(t, 1, `server answered 400: peers[0]: unknown peer "gamma"`, "groups", "update", "web", "--peer", "gamma")
	a.fails(t, 1, `server answered 404: unknown group "nope"`, "groups", "show", "nope")
	a.fails(t, 1, `server answered 400: unknown field "colour"`, "groups", "create", "-f", writeFile(t, "bad.json", `{"name": "x", "colour": "red"}`))

	// Usage errors: exit status 2, nothing sent.
	a.fails(t, 2, "--name required", "groups", "create")
	a.fails(t, 2, "nothing to update", "groups", "update", "web")
	a.fails(t, 2, "drop --name", "groups", "update", "web", "-f", doc, "--name", "x")
	a.fails(t, 2, "accepts 1 arg(s), received 0", "groups", "show")
	a.fails(t, 2, "want an object", "groups", "create", "-f", writeFile(t, "list.yaml", "- a\n- b\n"))

	// delete several: all are looked up first.
	a.fails(t, 1, `unknown group "ghost"`, "groups", "delete", "db", "ghost")
	a.jsonOf(t, &groups, "groups", "list")
	if len(groups) != 3 {
		t.Fatalf("a failed lookup deleted something: %+v", groups)
	}
	if out := a.ok(t, "groups", "delete", "db", "web"); out != "deleted group db\ndeleted group web\n" {
		t.Fatalf("delete: %q", out)
	}
	a.jsonOf(t, &groups, "groups", "list")
	if len(groups) != 1 {
		t.Fatalf("after delete: %+v", groups)
	}
}

func TestAdminPolicies(t *testing.T) {
	a := startAdmin(t)
	a.peer(t, "alpha")
	a.peer(t, "beta")
	a.ok(t, "groups", "create", "--name", "users", "--peer", "alpha")
	a.ok(t, "groups", "create", "--name", "servers", "--peer", "beta")

	a.ok(t, "policies", "create", "--name", "web", "--description", "users to web", "--src", "users", "--dst", "servers",
		"--proto", "tcp", "--port", "443", "--port", "8000-8080")
	a.ok(t, "policies", "create", "-f", writeFile(t, "p.yaml", `name: admin
rules:
  - name: ssh
    sources: [users]
    destinations: [servers]
    protocol: tcp
    ports: [22]
  - name: ping
    sources: [users]
    destinations: [servers]
    protocol: icmp
`))
	out := a.ok(t, "policies", "list")
	if !regexpLine(out, `^web +yes +1 +users -> servers tcp/443,8000-8080 accept +\S+$`) || !regexpLine(out, `^admin +yes +2 `) {
		t.Fatalf("list:\n%s", out)
	}
	var p policyJSON
	a.jsonOf(t, &p, "policies", "show", "admin")
	if len(p.Rules) != 2 || p.Rules[0].Ports[0] != "22" {
		t.Fatalf("created from YAML: %+v", p)
	}

	// --enabled=false changes only enabled.
	a.ok(t, "policies", "update", "web", "--enabled=false")
	a.jsonOf(t, &p, "policies", "show", "web")
	if p.Enabled || p.Description != "users to web" || p.Rules[0].summary() != "users -> servers tcp/443,8000-8080 accept" {
		t.Fatalf("after --enabled=false: %+v", p)
	}
	// Rule flags edit the only rule.
	a.ok(t, "policies", "update", "web", "--port", "80")
	a.jsonOf(t, &p, "policies", "show", "web")
	if p.Rules[0].summary() != "users -> servers tcp/80 accept" {
		t.Fatalf("after --port: %+v", p)
	}
	a.fails(t, 2, "this one has 2 rules", "policies", "update", "admin", "--port", "80")

	// A name two policies share is ambiguous; the ID still works.
	a.ok(t, "policies", "create", "--name", "web", "--src", "All", "--dst", "All", "--enabled=false")
	a.fails(t, 1, `name "web" is ambiguous: 2 policies have it`, "policies", "show", "web")
	a.ok(t, "policies", "show", p.ID)

	// check: the Default policy lets everyone reach everyone.
	out = a.ok(t, "policies", "check", "--src", "alpha", "--dst", "beta", "--proto", "tcp", "--port", "22")
	if !strings.HasPrefix(out, "allowed: alpha -> beta tcp/22 by policy ") {
		t.Fatalf("check: %q", out)
	}
	a.ok(t, "policies", "update", "Default", "--enabled=false")
	a.ok(t, "policies", "update", "admin", "--enabled=false")
	if out := a.ok(t, "policies", "check", "--src", "alpha", "--dst", "beta", "--proto", "tcp", "--port", "22"); !strings.HasPrefix(out, "denied: alpha -> beta tcp/22") {
		t.Fatalf("check after disabling: %q", out)
	}
	a.ok(t, "policies", "update", p.ID, "--enabled")
	var v checkJSON
	a.jsonOf(t, &v, "policies", "check", "--src", "alpha", "--dst", "beta", "--proto", "tcp", "--port", "80")
	if !v.Allowed || v.PolicyID != p.ID {
		t.Fatalf("check --json: %+v", v)
	}
	a.fails(t, 1, "server answered 400: port is required for proto tcp", "policies", "check", "--src", "alpha", "--dst", "beta", "--proto", "tcp")
	a.fails(t, 2, "--dst is required", "policies", "check", "--src", "alpha")

	a.fails(t, 1, `server answered 400: rules[0].sources[0]: unknown group "ghost"`, "policies", "create", "--name", "x", "--src", "ghost", "--dst", "All")
	a.ok(t, "policies", "delete", p.ID, "admin")
	a.fails(t, 1, `policy "admin" not found`, "policies", "show", "admin")
}

func TestAdminRoutes(t *testing.T) {
	a := startAdmin(t)
	a.peer(t, "gw")
	a.ok(t, "groups", "create", "--name", "gateways", "--peer", "gw")

	a.ok(t, "routes", "create", "--network", "10.30.0.0/24", "--peer", "gw", "--group", "All", "--metric", "10", "--masquerade")
	out := a.ok(t, "routes", "list")
	if !regexpLine(out, `^10\.30\.0\.0/24 +10\.30\.0\.0/24 +gw +All +10 +yes +yes +\S+$`) {
		t.Fatalf("list:\n%s", out)
	}
	// A route is found by its network when only one has it.
	a.ok(t, "routes", "update", "10.30.0.0/24", "--metric", "20", "--network-id", "office")
	var r routeJSON
	a.jsonOf(t, &r, "routes", "show", "10.30.0.0/24")
	if r.Metric != 20 || r.NetworkID != "office" || !r.Masquerade || r.Peer == nil {
		t.Fatalf("after update: %+v", r)
	}
	// Switching to peer groups drops the peer (null in the merge patch).
	a.ok(t, "routes", "update", r.ID, "--peer-group", "gateways")
	a.jsonOf(t, &r, "routes", "show", r.ID)
	if r.Peer != nil || r.via() != "groups:gateways" {
		t.Fatalf("after --peer-group: %+v", r)
	}
	a.fails(t, 1, "server answered 400: route network 100.64.1.0/24 overlaps", "routes", "create", "--network", "100.64.1.0/24",
		"--peer", "gw", "--group", "All")
	a.fails(t, 2, "give either --peer or --peer-group", "routes", "create", "--network", "10.1.0.0/16", "--group", "All")
	a.ok(t, "routes", "create", "--network", "10.30.0.0/24", "--peer", "gw", "--group", "All")
	a.fails(t, 1, `network "10.30.0.0/24" is ambiguous: 2 routes have it`, "routes", "show", "10.30.0.0/24")
	a.ok(t, "routes", "delete", r.ID)
	a.ok(t, "routes", "show", "10.30.0.0/24")
}

func TestAdminDNS(t *testing.T) {
	a := startAdmin(t)
	a.ok(t, "dns", "nameservers", "create", "--name", "corp", "--nameserver", "10.0.0.53", "--domain", "corp.example", "--group", "All")
	out := a.ok(t, "dns", "nameservers", "list")
	if !regexpLine(out, `^corp +10\.0\.0\.53:53 +corp\.example +no +All +yes +\S+$`) {
		t.Fatalf("nameservers list:\n%s", out)
	}
	a.ok(t, "dns", "ns", "update", "corp", "--nameserver", "10.0.0.53", "--nameserver", "[2001:db8::53]:5353", "--primary")
	var ns nameserverGroupJSON
	a.jsonOf(t, &ns, "dns", "nameservers", "show", "corp")
	if strings.Join(ns.Nameservers, " ") != "10.0.0.53:53 [2001:db8::53]:5353" || !ns.Primary || ns.Domains[0] != "corp.example" {
		t.Fatalf("nameserver group after update: %+v", ns)
	}

	a.ok(t, "dns", "zones", "create", "--domain", "lab.example", "--record", "db 60 A 10.0.0.5", "--record", `txt TXT hello world`)
	a.ok(t, "dns", "zones", "update", "lab.example", "--add-record", "www CNAME db.lab.example", "--remove-record", "db A")
	var z zoneJSON
	a.jsonOf(t, &z, "dns", "zones", "show", "lab.example")
	if len(z.Records) != 2 || z.Records[0] != (recordJSON{"txt", "TXT", "hello world", 300}) || z.Records[1].Type != "CNAME" {
		t.Fatalf("zone after update: %+v", z)
	}
	a.ok(t, "dns", "zones", "create", "-f", writeFile(t, "z.json", `{"domain": "other.example", "records": []}`))
	if out := a.ok(t, "dns", "zones", "list"); !regexpLine(out, `^lab\.example +2 `) || !regexpLine(out, `^other\.example +0 `) {
		t.Fatalf("zones list:\n%s", out)
	}
	a.fails(t, 1, `server answered 409: zone "petrel.internal" is the account's peer domain`, "dns", "zones", "create", "--domain", "petrel.internal")
	a.fails(t, 2, `want "NAME [TTL] TYPE VALUE"`, "dns", "zones", "update", "lab.example", "--add-record", "db A")

	if out := a.ok(t, "dns", "settings", "show"); out != "dns_domain: petrel.internal\n" {
		t.Fatalf("settings show: %q", out)
	}
	a.ok(t, "dns", "settings", "update", "--dns-domain", "mesh.example")
	a.ok(t, "dns", "settings", "update", "-f", writeFile(t, "s.yaml", "dns_domain: Mesh2.example.\n"))
	if out := a.ok(t, "dns", "settings", "show", "--json"); !strings.Contains(out, `"dns_domain": "mesh2.example"`) {
		t.Fatalf("settings after update: %q", out)
	}
	a.fails(t, 1, `dns_domain "other.example" is already a custom zone`, "dns", "settings", "update", "--dns-domain", "other.example")
	a.fails(t, 2, "give either --dns-domain or -f FILE", "dns", "settings", "update")

	a.ok(t, "dns", "zones", "delete", "lab.example", "other.example")
	a.ok(t, "dns", "nameservers", "delete", "corp")
	if out := a.ok(t, "dns", "zones", "list", "--json"); out != "[]\n" {
		t.Fatalf("zones after delete: %q", out)
	}
}

func TestAdminPeersAndSetupKeys(t *testing.T) {
	a := startAdmin(t)
	a.peer(t, "alpha")
	a.peer(t, "beta")

	a.ok(t, "peers", "update", "alpha", "--name", "laptop", "--dns-label", "lap")
	var p struct {
		peerJSON
		DNSLabel string `json:"dns_label"`
	}
	a.jsonOf(t, &p, "peers", "show", "lap.petrel.internal")
	if p.Name != "laptop" || p.DNSLabel != "lap" {
		t.Fatalf("peer after update: %+v", p)
	}
	a.fails(t, 1, `server answered 409: dns label "beta" is used by peer "beta"`, "peers", "update", "laptop", "--dns-label", "beta")
	if out := a.ok(t, "peers", "list"); !regexpLine(out, `^laptop +100\.\S+ +lap\.petrel\.internal +offline `) {
		t.Fatalf("peers list:\n%s", out)
	}
	if _, err := cli(t, "peers", "create"); exitStatus(err) != 2 || !strings.Contains(err.Error(), `unknown command "create"`) {
		t.Fatalf("peers create: %v", err)
	}
	a.ok(t, "peers", "delete", "laptop")

	// setup-keys, and setup-key (its old name) as an alias.
	a.ok(t, "setup-keys", "create", "-f", writeFile(t, "k.yaml", "name: ci\nreusable: true\nusage_limit: 5\nexpires_in: 7d\n"))
	out := a.ok(t, "setup-key", "list")
	if !regexpLine(out, `^\S+ +ci +psk_\S+ +valid +0/5 +\S+ +-$`) {
		t.Fatalf("setup-key list:\n%s", out)
	}
	if strings.Contains(out, "psk_") && regexpLine(out, `psk_[A-Za-z0-9]{20,}`) {
		t.Fatalf("list shows a whole key:\n%s", out)
	}
	a.ok(t, "setup-keys", "update", "ci", "--revoke")
	var k setupKeyJSON
	a.jsonOf(t, &k, "setup-keys", "show", "ci")
	if k.State != "revoked" || k.UsageLimit != 5 {
		t.Fatalf("key after --revoke: %+v", k)
	}
	a.fails(t, 1, `server answered 400: "name" is read-only`, "setup-keys", "update", "ci", "-f", writeFile(t, "k2.yaml", "name: other\nrevoked: true\n"))
	a.ok(t, "setup-key", "revoke", "for-beta")
	a.ok(t, "setup-keys", "delete", "ci", "for-alpha", "for-beta")
	if out := a.ok(t, "setup-keys", "list", "--json"); out != "[]\n" {
		t.Fatalf("keys after delete: %q", out)
	}
}

func TestRootUsageAndVersion(t *testing.T) {
	out, err := cli(t, "--version")
	if err != nil || out != "petrel-server "+versionString()+"\n" || !strings.Contains(out, "dev (commit ") {
		t.Fatalf("--version: %q %v", out, err)
	}
	commit = "abc123"
	defer func() { commit = "" }()
	if out, _ := cli(t, "--version"); !strings.HasPrefix(out, "petrel-server dev (commit abc123, go") {
		t.Fatalf("--version with a stamped commit: %q", out)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "petrel-server"`},
		{[]string{"grops"}, "did you mean groups?"},
		{[]string{"groups", "bogus"}, `unknown command "bogus" for "petrel-server groups"`},
		{[]string{"dns"}, "petrel-server dns needs a command: nameservers, settings, zones"},
		{[]string{}, "petrel-server needs a command"},
		{[]string{"groups", "delete"}, "requires at least 1 arg(s)"},
		{[]string{"groups", "list", "extra"}, `unknown command "extra"`},
		{[]string{"policies", "apply"}, "-f FILE is required"},
		{[]string{"config", "check"}, "config check takes one FILE"},
	} {
		_, err := cli(t, tc.args...)
		var ue usageError
		if err == nil || !errors.As(err, &ue) || exitCode(err) != 2 || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: got %v, want a usage error with %q", tc.args, err, tc.msg)
		}
	}
}
