package ui_test

// Browser test of the tokens page. With PETREL_UI_SCREENSHOTS=1 it writes
// docs/ui/tokens.png.

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"petrel/management/model"
)

// TestBrowserTokens: an owner signed in with their access token creates
// an admin token (shown once, selectable), sees it listed and not shown
// again, and deletes a hostile-named one through the confirmation page;
// no script runs, no dialog opens, no CSP violation on the way.
func TestBrowserTokens(t *testing.T) {
	chromium(t)
	e := newEnv(t)
	carol := e.user("carol", model.RoleOwner)
	tb := newTab(t, e.srv.URL)
	tb.signIn(carol.pat)

	tb.open("/ui/tokens")
	tb.do("create admin token", chromedp.SendKeys("#admin-token-name", "ci deploy"), chromedp.Click("#create-admin-token"),
		chromedp.WaitVisible("#new-token"))
	plain := strings.TrimSpace(tb.text("#new-token"))
	if acct, ok := e.svc.AuthenticateToken(plain); !ok || acct != e.acct {
		t.Fatalf("the token shown (%d characters) does not authenticate", len(plain))
	}
	if !strings.Contains(tb.text("#admin-tokens"), "ci deploy") || !strings.Contains(tb.text("#access-tokens"), "dashboard") {
		t.Fatal("tokens not listed")
	}
	if !tb.eval(`location.pathname === "/ui/tokens/admin" && !location.search`) {
		t.Fatal("the creating page is not the POST's response")
	}
	tb.screenshot("tokens")
	tb.clean("create")
	if _, err := e.svc.CreateAdminToken(e.ctx(), e.acct, xss[0]); err != nil {
		t.Fatal(err)
	}
	tb.open("/ui/tokens")
	if tb.eval(`document.body.innerText.includes(` + jsString(plain) + `)`) {
		t.Fatal("the token is shown again")
	}
	if !strings.Contains(tb.text("#admin-tokens"), xss[0]) {
		t.Fatal("the hostile token name is not shown as text (the test would prove nothing)")
	}

	// Delete the hostile-named token through its confirmation page.
	var hostile string
	for id, tk := range e.snapshot().AdminTokens {
		if tk.Name == xss[0] {
			hostile = id
		}
	}
	tb.do("delete", chromedp.Click(`#admin-token-`+hostile+` button`), chromedp.WaitVisible("#confirm-delete"))
	if l := tb.text("#confirm-list"); !strings.Contains(l, xss[0]) {
		t.Fatalf("confirmation lists %q", l)
	}
	tb.do("confirm", chromedp.Click("#confirm-delete"), chromedp.WaitVisible(".flash.ok"))
	if f := tb.text(".flash.ok"); !strings.Contains(f, "Deleted admin token "+xss[0]) {
		t.Fatalf("flash %q", f)
	}
	for _, tk := range e.snapshot().AdminTokens {
		if tk.Name == xss[0] {
			t.Fatal("the token was not deleted")
		}
	}
	tb.clean("delete")
}
