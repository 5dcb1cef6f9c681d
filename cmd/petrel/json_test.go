package main

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

// jsonMembers is the sorted member names of a JSON object.
func jsonMembers(t *testing.T, m map[string]any) []string {
	t.Helper()
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestJSONShapes pins the member names of the --json outputs documented in
// docs/cli.md ("JSON outputs"), with the real binary against a fake daemon.
func TestJSONShapes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	f := &fakeDaemon{status: twoPeers(), dns: `{"resolver":{"state":"started","listeners":["127.0.0.1:53"]},"host":{"mode":"off","repairs":0,"adopted":0}}`}
	sock := f.serve(t)

	out, code := run(t, bin, "routes", "--json", "--socket", sock)
	var routes []map[string]any
	if err := json.Unmarshal([]byte(out), &routes); code != 0 || err != nil || len(routes) != 2 {
		t.Fatalf("routes --json: exit %d, %v:\n%s", code, err, out)
	}
	if got, want := jsonMembers(t, routes[0]), []string{"chosen", "id", "metric", "network", "network_id", "peer", "peer_name", "state"}; !reflect.DeepEqual(got, want) {
		t.Errorf("routes --json members %v, want %v", got, want)
	}

	out, code = run(t, bin, "exit-node", "list", "--json", "--socket", sock)
	var exits struct {
		Selected   map[string]any   `json:"selected"`
		Candidates []map[string]any `json:"candidates"`
	}
	if err := json.Unmarshal([]byte(out), &exits); code != 0 || err != nil || len(exits.Candidates) != 1 {
		t.Fatalf("exit-node list --json: exit %d, %v:\n%s", code, err, out)
	}
	if got, want := jsonMembers(t, exits.Selected), []string{"active", "allow_lan", "auto", "connected", "kill_switch", "peer", "peer_name", "reason"}; !reflect.DeepEqual(got, want) {
		t.Errorf("exit-node selected members %v, want %v", got, want)
	}
	if got, want := jsonMembers(t, exits.Candidates[0]), []string{"latency_ms", "name", "path", "peer", "selected", "status"}; !reflect.DeepEqual(got, want) {
		t.Errorf("exit-node candidate members %v, want %v", got, want)
	}
	if c := exits.Candidates[0]; c["name"] != "beta" || c["path"] != "relay" {
		t.Errorf("candidate %v", c)
	}

	out, code = run(t, bin, "dns", "status", "--json", "--socket", sock)
	var dns map[string]any
	if err := json.Unmarshal([]byte(out), &dns); code != 0 || err != nil || dns["resolver"] == nil || dns["host"] == nil {
		t.Fatalf("dns status --json: exit %d, %v:\n%s", code, err, out)
	}
}
