package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"petrel/management/model"
	"petrel/server"
)

// peersOf returns the server's peers by name.
func peersOf(t *testing.T, srv *server.Server) map[string]*model.Peer {
	t.Helper()
	snap, err := srv.Management().Snapshot(srv.Management().Accounts()[0])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*model.Peer{}
	for _, p := range snap.Peers {
		out[p.Name] = p
	}
	return out
}

// upAgent brings up a netstack agent and stops it at the end of the test.
func upAgent(t *testing.T, bin, dir, name, url, key string, extra ...string) {
	t.Helper()
	args := append([]string{"up", "--netstack", "--ice-loopback", "--state-dir", dir, "--hostname", name,
		"--management-url", url, "--setup-key", key, "--timeout", "30s"}, extra...)
	if out, code := run(t, bin, args...); code != 0 {
		t.Fatalf("up %s: exit %d\n%s", name, code, out)
	}
	t.Cleanup(func() { run(t, bin, "down", "--state-dir", dir) })
}

// pingOK pings peer from the agent in dir until it answers.
func pingOK(t *testing.T, bin, dir, peer string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, code := run(t, bin, "ping", "--state-dir", dir, "-c", "1", peer)
		if code == 0 && strings.Contains(out, "reply from") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping %s never answered: exit %d\n%s", peer, code, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func profileOf(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCLIStatusDownExitStatuses: status exits 1 unless the agent is up
// (the state is still printed), down when already down is a no-op with
// exit 0.
func TestCLIStatusDownExitStatuses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	srv, key := startControlPlane(t)
	dir := stateDir(t)
	// No daemon at all.
	if out, code := run(t, bin, "status", "--state-dir", dir); code != 1 || !strings.Contains(out, "no petrel daemon") {
		t.Fatalf("status without a daemon: exit %d\n%s", code, out)
	}
	out, code := run(t, bin, "status", "--json", "--state-dir", dir)
	if code != 1 || !strings.Contains(out, `"state": "down"`) {
		t.Fatalf("status --json without a daemon: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "petrel:") {
		t.Fatalf("status --json printed an error besides the JSON:\n%s", out)
	}
	if out, code := run(t, bin, "down", "--state-dir", dir); code != 0 || !strings.Contains(out, "petrel is already down") {
		t.Fatalf("down without a daemon: exit %d\n%s", code, out)
	}
	upAgent(t, bin, dir, "solo", srv.PublicURL(), key)
	if out, code := run(t, bin, "status", "--json", "--state-dir", dir); code != 0 {
		t.Fatalf("status while up: exit %d\n%s", code, out)
	}
	// Down, daemon kept: status says down and exits 1; down again is a no-op.
	if out, code := run(t, bin, "down", "--stop-daemon=false", "--state-dir", dir); code != 0 || !strings.Contains(out, "petrel is down") {
		t.Fatalf("down: exit %d\n%s", code, out)
	}
	out, code = run(t, bin, "status", "--json", "--state-dir", dir)
	if code != 1 || !strings.Contains(out, `"state": "down"`) {
		t.Fatalf("status of a down daemon: exit %d\n%s", code, out)
	}
	if out, code := run(t, bin, "down", "--state-dir", dir); code != 0 || !strings.Contains(out, "petrel is already down") {
		t.Fatalf("down when down: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "petrel.sock")); !os.IsNotExist(err) {
		t.Fatalf("down when down left the daemon running: %v", err)
	}
}

// TestCLIUpDifferingFlagsAndSet: up with the running settings is a no-op;
// with others it changes nothing, says what differs and how to apply it,
// and exits 1; set applies a hostname live (management learns it) and
// saves it.
func TestCLIUpDifferingFlagsAndSet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	srv, key := startControlPlane(t)
	dir := stateDir(t)
	upAgent(t, bin, dir, "first", srv.PublicURL(), key)
	out, code := run(t, bin, "up", "--netstack", "--state-dir", dir, "--hostname", "first")
	if code != 0 || !strings.Contains(out, "already up") {
		t.Fatalf("up again with the same flags: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--hostname", "renamed"}, "petrel set --hostname renamed"},
		{[]string{"--mtu", "1300"}, "needs a restart: petrel down && petrel up --mtu 1300"},
		{[]string{"--force-relay"}, "--force-relay=true"},
	} {
		args := append([]string{"up", "--netstack", "--state-dir", dir}, tc.args...)
		out, code := run(t, bin, args...)
		if code != 1 || !strings.Contains(out, tc.want) || !strings.Contains(out, "nothing changed") {
			t.Errorf("up %v while up: exit %d, want 1 and %q\n%s", tc.args, code, tc.want, out)
		}
	}
	if got := profileOf(t, dir)["hostname"]; got != "first" {
		t.Fatalf("a refused up changed the saved hostname to %v", got)
	}
	out, code = run(t, bin, "set", "--hostname", "renamed", "--state-dir", dir)
	if code != 0 || !strings.Contains(out, "sent to management") {
		t.Fatalf("set --hostname: exit %d\n%s", code, out)
	}
	if got := peersOf(t, srv)["first"]; got == nil || got.Meta.Hostname != "renamed" {
		t.Fatalf("management did not learn the new hostname: %+v", got)
	}
	if got := profileOf(t, dir)["hostname"]; got != "renamed" {
		t.Fatalf("set did not save the hostname: %v", got)
	}
	if out, code := run(t, bin, "up", "--netstack", "--state-dir", dir, "--hostname", "renamed"); code != 0 {
		t.Fatalf("up with the set hostname: exit %d\n%s", code, out)
	}
	if out, code := run(t, bin, "set", "--state-dir", dir); code != 2 {
		t.Fatalf("set without flags: exit %d\n%s", code, out)
	}
	out, code = run(t, bin, "set", "--accept-dns=false", "--state-dir", dir)
	if code != 0 || !strings.Contains(out, "accept DNS: false") {
		t.Fatalf("set --accept-dns=false: exit %d\n%s", code, out)
	}
	if got := profileOf(t, dir)["accept_dns"]; got != false {
		t.Fatalf("accept_dns not saved: %v", got)
	}
	out, _ = run(t, bin, "status", "--json", "--state-dir", dir)
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.DNS == nil || st.DNS.HostMode != "off" {
		t.Fatalf("DNS host integration not off after set --accept-dns=false: %v\n%s", err, out)
	}
}

// TestCLIUpOtherServerKeepsTunnel: up --management-url OTHER is refused
// without --force-reauth, and a failed forced login leaves the running
// tunnel up; a good one moves the agent.
func TestCLIUpOtherServerKeepsTunnel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	srvA, keyA := startControlPlane(t)
	srvB, keyB := startControlPlane(t)
	one, two := stateDir(t), stateDir(t)
	upAgent(t, bin, one, "one", srvA.PublicURL(), keyA)
	upAgent(t, bin, two, "two", srvA.PublicURL(), keyA)
	pingOK(t, bin, one, "two.petrel.internal")

	out, code := run(t, bin, "up", "--netstack", "--state-dir", one, "--management-url", srvB.PublicURL(), "--setup-key", keyB)
	if code != 1 || !strings.Contains(out, "--force-reauth") || !strings.Contains(out, srvA.PublicURL()) {
		t.Fatalf("up to another server without --force-reauth: exit %d\n%s", code, out)
	}
	pingOK(t, bin, one, "two.petrel.internal")

	out, code = run(t, bin, "up", "--netstack", "--state-dir", one, "--management-url", srvB.PublicURL(),
		"--setup-key", "bogus", "--force-reauth", "--timeout", "10s")
	if code == 0 || !strings.Contains(out, "still registered with") {
		t.Fatalf("forced up with a bad key: exit %d\n%s", code, out)
	}
	pingOK(t, bin, one, "two.petrel.internal")
	if got := profileOf(t, one)["management_url"]; got != srvA.PublicURL() {
		t.Fatalf("a failed move changed the saved server to %v", got)
	}

	out, code = run(t, bin, "up", "--netstack", "--state-dir", one, "--management-url", srvB.PublicURL(),
		"--setup-key", keyB, "--force-reauth")
	if code != 0 {
		t.Fatalf("forced up with a good key: exit %d\n%s", code, out)
	}
	out, _ = run(t, bin, "status", "--json", "--state-dir", one)
	if !strings.Contains(out, `"url": "`+srvB.PublicURL()+`"`) {
		t.Fatalf("agent did not move to B:\n%s", out)
	}
	if peersOf(t, srvB)["one"] == nil {
		t.Fatal("B does not list the moved peer")
	}
}

// TestCLILogoutDeregisters: logout deletes the peer on the server (its
// name is free again), with the daemon running or stopped; an unreachable
// server still clears the registration locally and exits 1.
func TestCLILogoutDeregisters(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	srv, key := startControlPlane(t)
	dir := stateDir(t)
	upAgent(t, bin, dir, "hostd", srv.PublicURL(), key)
	out, code := run(t, bin, "logout", "--state-dir", dir)
	if code != 0 || !strings.Contains(out, "deleted this peer") {
		t.Fatalf("logout with the daemon: exit %d\n%s", code, out)
	}
	if p := peersOf(t, srv); len(p) != 0 {
		t.Fatalf("server still lists peers after logout: %v", p)
	}
	if got := profileOf(t, dir)["registered"]; got != false {
		t.Fatalf("logout left the profile registered: %v", got)
	}
	// Registering again gets the same name, not hostd-2.
	out, code = run(t, bin, "up", "--netstack", "--state-dir", dir, "--setup-key", key, "--timeout", "30s")
	if code != 0 {
		t.Fatalf("up after logout: exit %d\n%s", code, out)
	}
	if p := peersOf(t, srv)["hostd"]; p == nil || p.DNSLabel != "hostd" {
		t.Fatalf("re-registration did not get the name back: %v", peersOf(t, srv))
	}
	// With the daemon stopped.
	if out, code := run(t, bin, "down", "--state-dir", dir); code != 0 {
		t.Fatalf("down: exit %d\n%s", code, out)
	}
	out, code = run(t, bin, "logout", "--state-dir", dir)
	if code != 0 || !strings.Contains(out, "deleted this peer") {
		t.Fatalf("logout without a daemon: exit %d\n%s", code, out)
	}
	if p := peersOf(t, srv); len(p) != 0 {
		t.Fatalf("server still lists peers after an offline logout: %v", p)
	}
	// Server down: cleared locally, exit 1, says so.
	upAgent(t, bin, dir, "hostd", srv.PublicURL(), key)
	run(t, bin, "down", "--state-dir", dir)
	srv.Stop()
	out, code = run(t, bin, "logout", "--state-dir", dir)
	if code != 1 || !strings.Contains(out, "could not be told") {
		t.Fatalf("logout with the server down: exit %d\n%s", code, out)
	}
	if got := profileOf(t, dir)["registered"]; got != false {
		t.Fatalf("logout with the server down left the profile registered: %v", got)
	}
}
