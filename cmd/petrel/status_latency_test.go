package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"petrel/proto/daemonpb"
)

// The latency column shows the measurement with its age, "-" without one;
// an offline peer shows why; the JSON carries latency_age_s and
// offline_reason beside the unchanged latency_ms.
func TestStatusLatencyAndOfflineColumns(t *testing.T) {
	st := &daemonpb.StatusResponse{State: "connected", Peers: []*daemonpb.PeerStatus{
		{Name: "a", Fqdn: "a.petrel.internal", Status: "connected", Path: "relay", LatencyMs: 0.41, LatencyAgeS: 3},
		{Name: "b", Fqdn: "b.petrel.internal", Status: "connected", Path: "p2p", LatencyMs: 37.2, LatencyAgeS: 9},
		{Name: "c", Fqdn: "c.petrel.internal", Status: "offline", Path: "p2p", OfflineReason: "no-reply"},
	}}
	var out bytes.Buffer
	printStatus(&out, st)
	lines := map[string]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	for peer, want := range map[string][]string{
		"a.petrel.internal": {"0.41ms (3s ago)"},
		"b.petrel.internal": {"37ms (9s ago)"},
		"c.petrel.internal": {"offline (no-reply)", " - "},
	} {
		for _, w := range want {
			if !strings.Contains(lines[peer], w) {
				t.Errorf("row %s = %q, want it to contain %q", peer, lines[peer], w)
			}
		}
	}

	raw, err := json.Marshal(toJSON(st))
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Peers []map[string]any `json:"peers"`
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		t.Fatal(err)
	}
	if p := j.Peers[0]; p["latency_ms"] != 0.41 || p["latency_age_s"] != 3.0 || p["offline_reason"] != nil {
		t.Errorf("peer a JSON %v", p)
	}
	if p := j.Peers[2]; p["latency_ms"] != 0.0 || p["offline_reason"] != "no-reply" {
		t.Errorf("peer c JSON %v", p)
	}
}
