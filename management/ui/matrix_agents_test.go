package ui_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"petrel/client/engine"
	"petrel/internal/keys"
	"petrel/management"
	"petrel/management/model"
	"petrel/server"
)

// startAgentForced runs a netstack agent in-process, with every peer
// forced through the relay when forceRelay.
func startAgentForced(t *testing.T, srv *server.Server, key, name string, forceRelay bool) *engine.Engine {
	t.Helper()
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Config{ManagementURL: srv.PublicURL(), SetupKey: key, Hostname: name, Key: k,
		Netstack: true, SOCKS5Addr: "127.0.0.1:0", ICELoopback: true, ForceRelay: forceRelay,
		Logger: testLog().With("agent", name)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatalf("start agent %s: %v", name, err)
	}
	t.Cleanup(e.Stop)
	return e
}

// TestMatrixAgents: three real agents, the third forced through the
// relay; the matrix (from the agents' own path reports) shows p2p between
// the first two and relayed ("forced") with the third, and the pairs of a
// stopped agent go down — live in the browser, without a reload, when
// chromium is installed.
func TestMatrixAgents(t *testing.T) {
	srv, err := server.New(server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", STUNListen: "127.0.0.1:0", Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	svc := srv.Management()
	acct := svc.Accounts()[0]
	owner := management.WithPrincipal(context.Background(), management.Principal{AccountID: acct, Role: model.RoleOwner, Via: "test"})
	_, key, err := svc.CreateSetupKey(owner, acct, management.SetupKeyInput{Name: "agents", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	startAgentForced(t, srv, key, "m-alpha", false)
	startAgentForced(t, srv, key, "m-bravo", false)
	charlie := startAgentForced(t, srv, key, "m-charlie", true)
	ids := map[string]string{}
	snap, _ := svc.Snapshot(acct)
	var all []string
	for _, p := range snap.Peers {
		ids[p.Name] = p.ID
		all = append(all, p.ID)
	}
	a, b, c := ids["m-alpha"], ids["m-bravo"], ids["m-charlie"]
	var last string
	pair := func(x, y string) management.Pair {
		m, err := svc.Connectivity(acct, all, all)
		if err != nil {
			t.Fatal(err)
		}
		return m.Pair(x, y)
	}
	waitUntil(t, "alpha–bravo p2p and charlie relayed (forced) with both", func() bool {
		ab, ac, bc := pair(a, b), pair(a, c), pair(b, c)
		last = fmt.Sprintf("ab=%+v ac=%+v bc=%+v", ab, ac, bc)
		return ab.State == management.PairP2P && ab.AtoB.State == management.PathP2P && ab.BtoA.State == management.PathP2P &&
			ac.State == management.PairRelayed && ac.Reason == "forced" && bc.State == management.PairRelayed
	}, &last)

	t.Run("browser", func(t *testing.T) {
		chromium(t)
		tb := newTab(t, "http://"+srv.Addr().String())
		tb.signIn(srv.AdminToken())
		tb.open("/ui/matrix")
		cell := func(x, y string) string { return `document.getElementById(` + jsString("cell-"+x+"-"+y) + `)` }
		tb.until("the matrix to show p2p and relayed", cell(a, b)+`.dataset.state === 'p2p' && `+
			cell(a, c)+`.dataset.state === 'relayed' && `+cell(a, c)+`.textContent.includes('forced')`)
		// htmx's SSE extension keeps its EventSource in the element's
		// internal data; OPEN (1) means the change below cannot be missed.
		tb.until("the event stream to open", `(document.querySelector('[sse-connect]')['htmx-internal-data'] || {}).sseEventSource?.readyState === 1`)
		tb.eval(setMarker)
		charlie.Stop()
		tb.until("charlie's cells to go down", cell(a, c)+`.dataset.state === 'down' && `+cell(c, b)+`.dataset.state === 'down'`)
		if !tb.eval(hasMarker) {
			t.Fatal("the page reloaded to show the change")
		}
		if tb.eval(cell(a, b) + `.dataset.state !== 'p2p'`) {
			t.Fatal("alpha–bravo changed with charlie")
		}
		tb.screenshot("matrix")
		tb.clean("matrix")
	})

	charlie.Stop()
	waitUntil(t, "charlie's pairs down", func() bool {
		return pair(a, c).State == management.PairDown && pair(b, c).State == management.PairDown && pair(a, b).State == management.PairP2P
	}, &last)
}

// waitUntil polls cond every 100 ms for up to 90 s.
func waitUntil(t *testing.T, what string, cond func() bool, last *string) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%s)", what, *last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
