package ui_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"petrel/internal/keys"
	"petrel/internal/oidctest"
	"petrel/management"
	"petrel/management/model"
	"petrel/proto/managementpb"
	"petrel/server"
)

// TestBrowserOIDCSignIn drives Chromium through "Sign in with TestIdP" on
// a real petrel-server (its --oidc-* settings pointing at the real
// provider of internal/oidctest) with a real agent: the dashboard's
// button, the provider's login form, back on the peers page signed in as
// a user who sees only their own peer; the admin token still signs in
// beside the provider. No script error, dialog or CSP violation on the
// way. Chromium trusts the provider's certificate by its key only
// (--ignore-certificate-errors-spki-list), not every certificate.
func TestBrowserOIDCSignIn(t *testing.T) {
	chromium(t)
	p := oidctest.Start(t, oidctest.Config{Users: []oidctest.User{
		{Subject: "u-alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice", Password: "alice-pw-1"},
	}})
	srv, err := server.New(server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", STUNListen: "127.0.0.1:0", Logger: testLog(),
		OIDC: server.OIDC{Issuer: p.Issuer(), ClientID: p.ClientID(), WebClientID: p.WebClientID(), Name: "TestIdP",
			HTTPClient: p.HTTPClient()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	p.AllowRedirect(srv.PublicURL() + "/ui/login/callback")

	// A real agent with a setup key (the admin's), and alice's machine
	// signed in with an ID token of the agents' client.
	mgmt := srv.Management()
	acct := mgmt.Accounts()[0]
	admin := management.WithPrincipal(context.Background(), management.Principal{AccountID: acct, Role: model.RoleOwner, Via: "test"})
	_, key, err := mgmt.CreateSetupKey(admin, acct, management.SetupKeyInput{Name: "servers", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	startAgent(t, srv, key, "web-agent")
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mgmt.Login(context.Background(), k.Public(), &managementpb.LoginRequest{
		Jwt: p.Mint(t, oidctest.Token{Subject: "u-alice"}), Hostname: "alice-laptop"}); err != nil {
		t.Fatal(err)
	}

	spki := sha256.Sum256(p.Certificate().RawSubjectPublicKeyInfo)
	tb := newTab(t, srv.PublicURL(),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])))
	tb.open("/ui/login?next=%2Fui%2Fpeers")
	if got := tb.text("#signin-oidc"); got != "Sign in with TestIdP" {
		t.Fatalf("button %q", got)
	}
	tb.clean("sign-in page")
	tb.do("sign in with the provider", chromedp.Click("#signin-oidc"), chromedp.WaitVisible("#username"))
	loc, err := chromedp.Run(tb.ctx, chromedp.Location())
	if err != nil || !strings.HasPrefix(loc, p.Issuer()+"/login?") {
		t.Fatalf("provider page at %q (%v)", loc, err)
	}
	tb.do("provider login form", chromedp.SendKeys("#username", "alice@example.com"),
		chromedp.SendKeys("#password", "alice-pw-1"), chromedp.Click("#login"), chromedp.WaitVisible("#whoami"))
	loc, err = chromedp.Run(tb.ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := url.Parse(loc); u == nil || u.Path != "/ui/peers" || !strings.HasPrefix(loc, srv.PublicURL()) {
		t.Fatalf("landed on %q", loc)
	}
	if who := tb.text("#whoami"); !strings.Contains(who, "alice@example.com") || !strings.Contains(who, "user") {
		t.Fatalf("whoami %q", who)
	}
	rows := tb.text("#peer-rows")
	if !strings.Contains(rows, "alice-laptop") || strings.Contains(rows, "web-agent") {
		t.Fatalf("alice sees rows %q", rows)
	}
	// The session cookie is HttpOnly: scripts do not see it.
	if tb.eval(`document.cookie.includes('petrel_session')`) {
		t.Fatal("the session cookie is readable by scripts")
	}
	tb.clean("signed in with the provider")

	// The admin token still signs in, and sees every peer.
	at := newTab(t, srv.PublicURL())
	at.signIn(srv.AdminToken())
	at.until("the agent's row", `document.querySelector('#peer-rows') !== null &&
		document.querySelector('#peer-rows').textContent.includes('web-agent')`)
	if rows := at.text("#peer-rows"); !strings.Contains(rows, "alice-laptop") {
		t.Fatalf("admin sees rows %q", rows)
	}
	at.clean("signed in with the admin token")
}
