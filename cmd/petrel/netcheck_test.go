package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClassifyNAT(t *testing.T) {
	local := map[string]bool{"192.168.1.5": true}
	for _, tc := range []struct {
		mapped []string
		want   string
	}{
		{nil, "unknown"},
		{[]string{"192.168.1.5:4000"}, "none"},
		{[]string{"192.168.1.5:4001", "192.168.1.5:4001"}, "endpoint-independent"}, // port rewritten: a NAT on this host
		{[]string{"203.0.113.7:6000"}, "unknown"},
		{[]string{"203.0.113.7:6000", "203.0.113.7:6000"}, "endpoint-independent"},
		{[]string{"203.0.113.7:6000", "203.0.113.7:6001"}, "endpoint-dependent"},
	} {
		if got := classifyNAT(tc.mapped, 4000, local); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.mapped, got, tc.want)
		}
	}
}

// TestNetcheck runs the real binary against an in-process control plane
// with its two STUN ports on loopback sockets.
func TestNetcheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	srv, _ := startControlPlane(t)
	ep := srv.Endpoints()
	if len(ep.STUNURLs) < 2 || len(ep.RelayURLs) == 0 {
		t.Fatalf("server endpoints: %+v", ep)
	}
	args := []string{"netcheck", "--json", "--management-url", srv.PublicURL()}
	for _, s := range ep.STUNURLs {
		args = append(args, "--stun", s)
	}
	for _, r := range ep.RelayURLs {
		args = append(args, "--relay", r)
	}
	args = append(args, "--relay", "rel://127.0.0.1:1")
	out, code := run(t, bin, args...)
	var r netcheckReport
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	if !r.UDP || r.NAT != "none" || !strings.HasPrefix(r.PublicAddress, "127.0.0.1:") || len(r.STUN) != len(ep.STUNURLs) {
		t.Fatalf("UDP/NAT: %s", out)
	}
	for _, s := range r.STUN {
		if s.MappedAddress != r.PublicAddress || s.Error != "" {
			t.Fatalf("STUN %+v (one socket must map to one address)", s)
		}
	}
	if m := r.Management; m == nil || !m.Reachable || m.Error != "" {
		t.Fatalf("management: %s", out)
	}
	if n := len(r.Relays); n != len(ep.RelayURLs)+1 || !r.Relays[0].Reachable || r.Relays[n-1].Reachable || !strings.Contains(r.Relays[n-1].Error, "refused") {
		t.Fatalf("relays: %s", out)
	}

	// Human form; and without flags the servers come from the saved profile.
	out, code = run(t, bin, "netcheck", "--management-url", srv.PublicURL(), "--stun", ep.STUNURLs[0], "--stun", ep.STUNURLs[1])
	if code != 0 || !strings.Contains(out, "UDP:          yes") || !strings.Contains(out, "NAT:          none") || strings.ContainsRune(out, 0x1b) {
		t.Fatalf("human form: exit %d\n%s", code, out)
	}
	dir := stateDir(t)
	if out, code := run(t, bin, "netcheck", "--state-dir", dir); code != 1 || !strings.Contains(out, "no management server known") {
		t.Fatalf("no profile: exit %d\n%s", code, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"management_url": "`+srv.PublicURL()+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = run(t, bin, "netcheck", "--json", "--state-dir", dir, "--timeout", "300ms")
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.Source != "profile" || r.Management == nil || !r.Management.Reachable {
		t.Fatalf("from the profile: exit %d %v\n%s", code, err, out)
	}
}
