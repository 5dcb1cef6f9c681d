package ui_test

// Browser tests: headless Chromium driven over the DevTools protocol
// (chromedp). They run wherever a chromium binary is found (CI installs
// Debian's chromium, .ci/run) and skip only when there is none. With
// PETREL_UI_SCREENSHOTS=1 they write PNG screenshots of the main pages to
// docs/ui/.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"petrel/client/engine"
	"petrel/internal/keys"
	"petrel/management"
	"petrel/management/model"
	"petrel/server"
)

// chromium returns the browser binary or skips the test when none exists.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium binary on PATH (CI installs Debian's chromium; apt-get install chromium)")
	return ""
}

// tab is one browser tab that records everything that must not happen:
// dialogs (alert, confirm, prompt), uncaught exceptions, console errors
// and warnings, browser log errors and CSP violations.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu       sync.Mutex
	problems []string
}

// cspProbe reports CSP violations to the console; added through the
// DevTools protocol, it runs before the page's own scripts and is not
// subject to the page's CSP.
const cspProbe = `document.addEventListener('securitypolicyviolation', function (e) {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI + ' sample ' + e.sample);
});`

func newTab(t *testing.T, base string, extra ...chromedp.ExecAllocatorOption) *tab {
	t.Helper()
	exe := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(t.TempDir()))
	opts = append(opts, extra...)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, tcancel := context.WithTimeout(ctx, 3*time.Minute)
	tb := &tab{t: t, ctx: ctx, base: base}
	t.Cleanup(func() { tcancel(); cancel(); acancel() })

	console := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			switch strings.ToLower(string(m.Type)) {
			case "error", "warning", "exception", "assert":
				tb.problem(fmt.Sprintf("console %s: %s", m.Type, m.Text))
			}
		}
	}()
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			tb.problem(fmt.Sprintf("JavaScript dialog (%s) opened: %q — a script ran", ev.Type, ev.Message))
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return tb
}

func (tb *tab) problem(s string) {
	tb.mu.Lock()
	tb.problems = append(tb.problems, s)
	tb.mu.Unlock()
}

// forget drops recorded problems containing s (an error page loaded on
// purpose is logged as a failed load).
func (tb *tab) forget(s string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var rest []string
	for _, p := range tb.problems {
		if !strings.Contains(p, s) {
			rest = append(rest, p)
		}
	}
	tb.problems = rest
}

// clean fails the test on anything recorded so far.
func (tb *tab) clean(when string) {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.problems) > 0 {
		tb.t.Fatalf("%s: the page misbehaved:\n  %s", when, strings.Join(tb.problems, "\n  "))
	}
}

func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.do("open "+path, chromedp.Navigate(tb.base+path), chromedp.WaitReady("body"))
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Text(sel))
	if err != nil {
		tb.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (tb *tab) eval(js string) bool {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](js))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// until polls a JavaScript condition until it holds (deadline 30 s).
func (tb *tab) until(what, js string) {
	tb.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !tb.eval(js) {
		if time.Now().After(deadline) {
			html, _ := chromedp.Run(tb.ctx, chromedp.OuterHTML("main"))
			tb.t.Fatalf("timed out waiting for %s; page:\n%s", what, html)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (tb *tab) signIn(token string) {
	tb.t.Helper()
	tb.open("/ui/login")
	tb.do("sign in", chromedp.SendKeys("#token", token), chromedp.Click("#signin"), chromedp.WaitVisible("#whoami"))
}

// screenshot writes docs/ui/name.png when PETREL_UI_SCREENSHOTS=1.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	if os.Getenv("PETREL_UI_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "docs", "ui")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// marker tags the current document; a reload or navigation loses it.
const (
	setMarker = `window.__petrelMarker = 1; true`
	hasMarker = `window.__petrelMarker === 1`
)

// TestBrowserAdmin drives the dashboard of a real petrel-server with real
// agents (netstack, in-process): sign in with the admin token, create a
// setup key (shown once), register an agent with it and watch its row
// appear live, see it go offline without a reload, create a group, ask the
// policy simulator, bulk-delete, with no script error, dialog or CSP
// violation on the way.
func TestBrowserAdmin(t *testing.T) {
	chromium(t)
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
	tb := newTab(t, "http://"+srv.Addr().String())

	tb.signIn(srv.AdminToken())
	if !strings.Contains(tb.text("#no-peers"), "No peers yet") {
		t.Fatal("empty state missing")
	}
	tb.clean("sign in")

	// Create a reusable setup key: shown once.
	tb.open("/ui/setup-keys")
	tb.do("create key", chromedp.SendKeys("#key-name", "laptops"), chromedp.Click("#key-reusable"),
		chromedp.Click("#create-key"), chromedp.WaitVisible("#new-key"))
	key := strings.TrimSpace(tb.text("#new-key"))
	if len(key) < 20 {
		t.Fatalf("setup key %q", key)
	}
	tb.screenshot("setup-keys")
	tb.open("/ui/setup-keys")
	if tb.eval(`document.body.innerText.includes(` + jsString(key) + `)`) {
		t.Fatal("the setup key is shown again")
	}

	// A peer registered by the service directly (cheap) and an agent.
	mgmt := srv.Management()
	acct := mgmt.Accounts()[0]
	registerPeer(t, mgmt, key, "db-server")

	tb.open("/ui/peers")
	tb.until("the event stream to connect", `document.querySelector('#no-peers') === null`)
	tb.eval(setMarker)
	agent := startAgent(t, srv, key, "web-agent")
	tb.until("the agent's row to appear connected", `[...document.querySelectorAll('#peer-rows tr')].some(r =>
		r.textContent.includes('web-agent') && r.dataset.connected === 'true')`)
	if !tb.eval(hasMarker) {
		t.Fatal("the page reloaded to show the new peer")
	}
	tb.screenshot("peers")
	tb.clean("live row")

	// Offline flips the row without a reload.
	agent.Stop()
	tb.until("the agent's row to go offline", `[...document.querySelectorAll('#peer-rows tr')].some(r =>
		r.textContent.includes('web-agent') && r.dataset.connected === 'false')`)
	if !tb.eval(hasMarker) {
		t.Fatal("the page reloaded to show the peer offline")
	}

	// Create a group.
	tb.open("/ui/groups")
	tb.do("create group", chromedp.SendKeys("#group-name", "servers"), chromedp.Click("#create-group"),
		chromedp.WaitVisible(".flash.ok"))
	if !strings.Contains(tb.text("#groups"), "servers") {
		t.Fatal("group not listed")
	}

	// The simulator answers with the service's verdict and rule.
	tb.open("/ui/policies")
	tb.do("simulate", chromedp.SendKeys("#sim-src", "web-agent"), chromedp.SendKeys("#sim-dst", "db-server"),
		chromedp.SendKeys("#sim-port", "5432"), chromedp.Click("#sim-run"), chromedp.WaitVisible("#verdict"))
	if v := tb.text("#verdict"); !strings.Contains(v, "Allowed") || !strings.Contains(v, "web-agent → db-server") {
		t.Fatalf("verdict %q", v)
	}
	tb.screenshot("simulator")

	// Edit the default policy in its form: disabled, the simulator denies.
	tb.open("/ui/policies")
	tb.do("open the default policy", chromedp.Click(`#policies a.policy-link`), chromedp.WaitVisible("#policy-form"))
	tb.do("disable it", chromedp.Click("#policy-enabled"), chromedp.Click("#save-policy"), chromedp.WaitVisible(".flash.ok"))
	simURL := "/ui/policies?src=web-agent&dst=db-server&proto=tcp&port=5432"
	tb.open(simURL)
	if v := tb.text("#verdict"); !strings.Contains(v, "Denied") {
		t.Fatalf("verdict with the default policy disabled: %q", v)
	}
	// Create a policy for tcp/5432 in the form: allowed by its rule.
	tb.open("/ui/policies/new")
	tb.eval(`for (const o of document.querySelectorAll('#rule-src-0 option, #rule-dst-0 option')) { o.selected = o.textContent.trim() === 'All'; } true`)
	tb.do("create a policy", chromedp.SendKeys("#policy-name", "postgres"), chromedp.SendKeys("#rule-name-0", "db"),
		chromedp.SetValue("#rule-proto-0", "tcp"), chromedp.SendKeys("#rule-ports-0", "5432"),
		chromedp.Click("#save-policy"), chromedp.WaitVisible(".flash.ok"))
	tb.open(simURL)
	if v, rule := tb.text("#verdict"), tb.text("#deciding-policy"); !strings.Contains(v, "Allowed") || rule != "postgres" {
		t.Fatalf("verdict after creating the policy: %q (policy %q)", v, rule)
	}
	tb.clean("policy forms")

	// Bulk delete: select the agent's row, confirm.
	tb.open("/ui/peers?q=web")
	tb.do("select", chromedp.Click("#peer-rows input[type=checkbox]"), chromedp.Click("#delete-selected"),
		chromedp.WaitVisible("#confirm-delete"))
	if l := tb.text("#confirm-list"); !strings.Contains(l, "web-agent") || strings.Contains(l, "db-server") {
		t.Fatalf("confirmation lists %q", l)
	}
	tb.do("confirm", chromedp.Click("#confirm-delete"), chromedp.WaitVisible(".flash.ok"))
	if f := tb.text(".flash.ok"); !strings.Contains(f, "Deleted 1 peer(s).") {
		t.Fatalf("flash %q", f)
	}
	a, _ := mgmt.Snapshot(acct)
	for _, p := range a.Peers {
		if p.Name == "web-agent" {
			t.Fatal("agent's peer not deleted")
		}
	}
	tb.open("/ui/events")
	tb.screenshot("events")
	tb.clean("admin walk")
}

// TestBrowserHostileNamesAndRoles loads every page with hostile peer,
// group, key and DNS names (and swaps rows in live through htmx) and
// fails on any script that runs, dialog or CSP violation; then a user's
// access token sees only their peers and a 403 on admin pages.
func TestBrowserHostileNamesAndRoles(t *testing.T) {
	chromium(t)
	e := newEnv(t)
	key := e.setupKey()
	var hostile []keys.Private
	for i, s := range xss {
		p, k := e.addPeer(key, fmt.Sprintf("h%d", i))
		cp := *p
		cp.Name = s
		_, _ = e.svc.Put(e.ctx(), e.acct, &cp) // control characters are refused by the service
		_, _ = e.svc.Put(e.ctx(), e.acct, &model.Group{Name: "g" + s, PeerIDs: []string{p.ID}})
		_, _, _ = e.svc.CreateSetupKey(e.ctx(), e.acct, management.SetupKeyInput{Name: "k" + s})
		hostile = append(hostile, k)
	}
	_, _ = e.svc.Put(e.ctx(), e.acct, &model.DNSZone{Domain: "zone.test", Records: []model.DNSRecord{{Name: "www", Type: "TXT", Value: xss[0], TTL: 60}}})
	alice := e.user("alice", model.RoleUser)
	e.userPeer(alice, "alice-laptop")

	tb := newTab(t, e.srv.URL)
	tb.signIn(e.admin)
	for _, path := range append(adminPages, "/ui/peers?q="+strings.ReplaceAll(xss[0], " ", "+")) {
		tb.open(path)
		if strings.Contains(path, "src=a&") { // unknown peers: a 400 page on purpose
			tb.forget("status of 400")
		}
		tb.clean(path)
	}
	tb.open("/ui/peers")
	if !strings.Contains(tb.text("#peer-rows"), xss[0]) {
		t.Fatal("hostile name not shown as text (the test would prove nothing)")
	}
	// Live swaps go through htmx: connect the hostile peers and wait for
	// their rows to be swapped in.
	tb.until("the event stream to connect", `document.querySelector('#peer-rows') !== null`)
	for _, k := range hostile {
		e.connect(k)
	}
	tb.until("hostile rows swapped in live", `document.querySelectorAll('#peer-rows tr[data-connected=true]').length === `+fmt.Sprint(len(hostile)))
	tb.clean("live swap of hostile rows")

	// A user's PAT: own peers only, 403 on admin pages.
	ut := newTab(t, e.srv.URL)
	ut.signIn(alice.pat)
	rows := ut.text("#peer-rows")
	if !strings.Contains(rows, "alice-laptop") || strings.Contains(rows, "h0") || strings.Contains(rows, "img") {
		t.Fatalf("user sees rows %q", rows)
	}
	ut.open("/ui/setup-keys")
	if msg := ut.text("#error"); !strings.Contains(msg, "needs the admin role") {
		t.Fatalf("user on an admin page: %q", msg)
	}
	ut.forget("status of 403") // the browser logs the 403 page as a failed load
	ut.clean("user tab")
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }

// registerPeer registers a peer without an agent.
func registerPeer(t *testing.T, svc *management.Service, key, name string) {
	t.Helper()
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Login(context.Background(), k.Public(), loginRequest(key, name)); err != nil {
		t.Fatal(err)
	}
}

// startAgent runs a netstack agent in-process.
func startAgent(t *testing.T, srv *server.Server, key, name string) *engine.Engine {
	t.Helper()
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Config{ManagementURL: srv.PublicURL(), SetupKey: key, Hostname: name, Key: k,
		Netstack: true, SOCKS5Addr: "127.0.0.1:0", ICELoopback: true, Logger: testLog().With("agent", name)})
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
