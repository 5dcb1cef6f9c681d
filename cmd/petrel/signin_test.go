package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"petrel/client/oidcdevice"
	"petrel/internal/oidctest"
	"petrel/management"
	"petrel/management/model"
	"petrel/server"
)

// TestCLISignInDeviceFlow is the identity end-to-end test: a real OpenID
// provider (internal/oidctest), a real server trusting it, and real agent
// binaries. bob signs his machine in through the device flow (the test
// approves the code on the provider's pages over HTTP, as a browser
// would); his IdP group "eng" gives him access to the servers through a
// policy; his OpenID ID token works on the REST API as role user (own
// peers only, 403 on others'; opaque access tokens are refused); after the
// IdP drops him from eng and he signs in again, the access is gone.
func TestCLISignInDeviceFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	p := oidctest.Start(t, oidctest.Config{PollInterval: time.Second, Users: []oidctest.User{
		{Subject: "bob", Email: "bob@example.com", EmailVerified: true, Name: "Bob", Groups: []string{"eng"}},
	}})
	ca := filepath.Join(t.TempDir(), "idp-ca.pem")
	if err := os.WriteFile(ca, p.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", STUNListen: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler), OIDC: server.OIDC{Issuer: p.Issuer(), ClientID: p.ClientID(),
			GroupsClaim: p.GroupsClaim(), Scopes: []string{"openid", "email", "profile", p.GroupsScope()},
			HTTPClient: p.HTTPClient()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	svc := srv.Management()
	acct := svc.Accounts()[0]

	// The admin replaces the default all-to-all policy by eng ↔ servers;
	// "eng" exists before any sign-in (the IdP group of that name joins it).
	snap, _ := svc.Snapshot(acct)
	for id := range snap.Policies {
		if err := svc.Delete(ctx, acct, model.KindPolicy, id); err != nil {
			t.Fatal(err)
		}
	}
	put := func(o model.Object) model.Object {
		out, err := svc.Put(ctx, acct, o)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	servers := put(&model.Group{Name: "servers"}).(*model.Group)
	_, key, err := svc.CreateSetupKey(ctx, acct, management.SetupKeyInput{Name: "servers", Reusable: true,
		AutoGroups: []string{servers.ID}})
	if err != nil {
		t.Fatal(err)
	}

	bin := buildAgent(t)
	db, laptop := stateDir(t), stateDir(t)
	common := []string{"--netstack", "--ice-loopback", "--management-url", srv.PublicURL(), "--timeout", "60s"}
	if out, code := run(t, bin, append([]string{"up", "--state-dir", db, "--hostname", "db", "--setup-key", key}, common...)...); code != 0 {
		t.Fatalf("up db: exit %d\n%s", code, out)
	}
	defer run(t, bin, "down", "--state-dir", db)

	signIn(t, p, bin, append([]string{"up", "--state-dir", laptop, "--hostname", "bobs-laptop", "--ca-file", ca}, common...))
	defer run(t, bin, "down", "--state-dir", laptop)
	// The sign-in created bob's IdP group "eng"; the admin's policy names it.
	snap, _ = svc.Snapshot(acct)
	var eng *model.Group
	for _, g := range snap.Groups {
		if g.Name == "eng" && g.IdPManaged {
			eng = g
		}
	}
	if eng == nil || len(eng.PeerIDs) != 1 {
		t.Fatalf("IdP group eng after sign-in: %+v", eng)
	}
	put(&model.Policy{Name: "eng-to-servers", Enabled: true, Rules: []model.PolicyRule{{Name: "all",
		Sources: []string{eng.ID}, Destinations: []string{servers.ID}, Protocol: model.ProtoAll,
		Bidirectional: true, Action: model.ActionAccept}}})
	waitPeers(t, bin, laptop, 1)
	if out, code := run(t, bin, "ping", "--state-dir", laptop, "-c", "2", "db.petrel.internal"); code != 0 {
		t.Fatalf("bob cannot reach db through eng-to-servers: exit %d\n%s", code, out)
	}
	snap, _ = svc.Snapshot(acct)
	var bob *model.User
	for _, u := range snap.Users {
		bob = u
	}
	if bob == nil || bob.Email != "bob@example.com" || len(bob.Groups) != 1 || bob.Groups[0] != eng.ID {
		t.Fatalf("user after sign-in: %+v", bob)
	}

	// bob's OpenID token on the REST API: role user, own peers only. An
	// opaque access token is refused (nothing ties it to Petrel); the ID
	// token, issued for Petrel's client, is accepted.
	access, tok := deviceTokens(t, p, "bob")
	if code := restGet(t, srv.PublicURL()+"/api/peers", access, nil); code != http.StatusUnauthorized {
		t.Fatalf("GET /api/peers with an opaque access token: %d, want 401", code)
	}
	var peers []map[string]any
	if code := restGet(t, srv.PublicURL()+"/api/peers", tok, &peers); code != 200 || len(peers) != 1 || peers[0]["name"] != "bobs-laptop" {
		t.Fatalf("GET /api/peers as bob: %d %v", code, peers)
	}
	var dbID string
	for _, pe := range snap.Peers {
		if pe.Name == "db" {
			dbID = pe.ID
		}
	}
	if code := restGet(t, srv.PublicURL()+"/api/peers/"+dbID, tok, nil); code != http.StatusForbidden {
		t.Fatalf("GET another's peer as bob: %d, want 403", code)
	}
	if code := restGet(t, srv.PublicURL()+"/api/groups", tok, nil); code != http.StatusForbidden {
		t.Fatalf("GET /api/groups as bob: %d, want 403", code)
	}

	// Blocking bob ends his agent's connection at once: needs-login.
	blocked := true
	if _, err := svc.UpdateUser(ctx, acct, bob.ID, management.UserUpdate{Blocked: &blocked}); err != nil {
		t.Fatal(err)
	}
	waitState(t, bin, laptop, "needs-login")
	blocked = false
	if _, err := svc.UpdateUser(ctx, acct, bob.ID, management.UserUpdate{Blocked: &blocked}); err != nil {
		t.Fatal(err)
	}

	// The IdP drops bob from eng; his next sign-in takes the access away
	// (and reconnects the agent that was refused).
	p.SetGroups(t, "bob", nil)
	signIn(t, p, bin, []string{"login", "--sign-in", "--state-dir", laptop, "--management-url", srv.PublicURL(), "--ca-file", ca})
	waitState(t, bin, laptop, "connected")
	waitPeers(t, bin, laptop, 0)
	if out, code := run(t, bin, "ping", "--state-dir", laptop, "-c", "1", "--timeout", "2s", "db.petrel.internal"); code == 0 {
		t.Fatalf("bob still reaches db after leaving eng:\n%s", out)
	}
}

// signIn runs a petrel command that signs in with the device flow, reads
// the user code it prints, approves it at the provider as bob and waits
// for the command to succeed.
func signIn(t *testing.T, p *oidctest.Provider, bin string, args []string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	codeRE := regexp.MustCompile(`enter the code (\S+)`)
	var seen strings.Builder
	sc := bufio.NewScanner(stderr)
	approved := false
	for sc.Scan() {
		line := sc.Text()
		seen.WriteString(line + "\n")
		if m := codeRE.FindStringSubmatch(line); m != nil && !approved {
			p.ApproveDevice(t, m[1], "bob")
			approved = true
		}
	}
	_, _ = io.Copy(io.Discard, stderr)
	if err := cmd.Wait(); err != nil || !approved {
		t.Fatalf("%v: %v (approved %v)\nstderr:\n%s\nstdout:\n%s", args, err, approved, seen.String(), stdout.String())
	}
	if strings.Contains(seen.String()+stdout.String(), "eyJ") {
		t.Fatal("the CLI printed a token")
	}
}

// waitPeers polls status until the agent sees n peers (connected when n>0).
func waitPeers(t *testing.T, bin, dir string, n int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, _ := run(t, bin, "status", "--json", "--state-dir", dir)
		var st struct {
			Peers []struct {
				Status string `json:"status"`
			} `json:"peers"`
		}
		if json.Unmarshal([]byte(out), &st) == nil && len(st.Peers) == n && (n == 0 || st.Peers[0].Status == "connected") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent never saw %d peer(s):\n%s", n, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// deviceTokens signs subject in at the provider with the device flow and
// returns the access token and the ID token.
func deviceTokens(t *testing.T, p *oidctest.Provider, subject string) (access, id string) {
	t.Helper()
	ctx := context.Background()
	a, err := oidcdevice.Start(ctx, oidcdevice.Config{Issuer: p.Issuer(), ClientID: p.ClientID(),
		Scopes: []string{"openid", "email", p.GroupsScope()}, HTTPClient: p.HTTPClient(),
		Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	p.ApproveDevice(t, a.UserCode, subject)
	tok, err := a.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken, tok.IDToken
}

func restGet(t *testing.T, url, token string, into any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil && resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// waitState polls status until the agent is in state.
func waitState(t *testing.T, bin, dir, state string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _ := run(t, bin, "status", "--json", "--state-dir", dir)
		var st struct {
			State string `json:"state"`
		}
		if json.Unmarshal([]byte(out), &st) == nil && st.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent never reached state %s:\n%s", state, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
