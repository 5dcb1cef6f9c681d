package server

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestDashboardSessionOnEveryInstance: with --ha a dashboard session
// opened on one instance is served by the other (the load balancer may
// send the next request anywhere), its messages too; signing out on one
// ends it on both; and the database holds only the session ID's hash.
func TestDashboardSessionOnEveryInstance(t *testing.T) {
	srv1, srv2, dsn := startHAPair(t, 2*time.Second)
	ctx := testCtx(t)
	m := srv1.Management()
	token, err := m.CreateAdminToken(ctx, m.Accounts()[0], "dashboard")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(srv *Server, method, path string, form url.Values, cookie *http.Cookie) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, srv.PublicURL()+path, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	resp, _ := do(srv1, "POST", "/ui/login", url.Values{"token": {token}}, nil)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "petrel_session" && c.Value != "" {
			cookie = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || cookie == nil {
		t.Fatalf("sign-in on instance 1: %d, cookie %v", resp.StatusCode, cookie)
	}
	signedIn := func(srv *Server) bool {
		resp, body := do(srv, "GET", "/ui/groups", nil, cookie)
		return resp.StatusCode == http.StatusOK && strings.Contains(body, "Sign out")
	}
	if !signedIn(srv2) {
		t.Fatal("the session opened on instance 1 is unknown to instance 2")
	}
	// A change made through instance 2 leaves its message for the next
	// page, which instance 1 shows.
	resp, _ = do(srv2, "POST", "/ui/groups", url.Values{"name": {"made-on-two"}}, cookie)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create a group on instance 2: %d", resp.StatusCode)
	}
	if _, body := do(srv1, "GET", "/ui/groups", nil, cookie); !strings.Contains(body, "made-on-two") ||
		!strings.Contains(body, "class=\"flash") {
		t.Fatal("instance 1 did not show the message of the change made through instance 2")
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM ui_state WHERE kind = 'session' AND data NOT LIKE '%'||$1||'%'
		AND encode(key, 'escape') NOT LIKE '%'||$1||'%'`, cookie.Value).Scan(&n); err != nil || n != 1 {
		t.Fatalf("stored sessions without the cookie value: %d, %v; want 1", n, err)
	}

	if resp, _ := do(srv2, "POST", "/ui/logout", url.Values{}, cookie); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out on instance 2: %d", resp.StatusCode)
	}
	if signedIn(srv1) || signedIn(srv2) {
		t.Fatal("the session signed out on instance 2 still works")
	}
}
