package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"petrel/internal/keys"
	"petrel/management"
	"petrel/management/model"
	"petrel/proto/managementpb"
	"petrel/server"
)

// fakeDNSAgent opens k's Sync stream as an agent that takes DNS tests and
// answers each with answer (through the service, as ReportDNSQuery does).
func (e *env) fakeDNSAgent(k keys.Private, answer func(*managementpb.DNSQuery) *managementpb.DNSQueryResult) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	done, first := make(chan struct{}), make(chan struct{}, 1)
	req := &managementpb.SyncRequest{Capabilities: []managementpb.Capability{managementpb.Capability_CAPABILITY_DNS_QUERY}}
	go func() {
		defer close(done)
		_ = e.svc.Sync(ctx, k.Public(), req, func(r *managementpb.SyncResponse) error {
			select {
			case first <- struct{}{}:
			default:
			}
			if q := r.GetDnsQuery(); q != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = e.svc.ReportDNSQuery(k.Public(), answer(q))
				}()
			}
			return nil
		})
	}()
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		e.t.Fatal("sync did not start")
	}
	e.t.Cleanup(func() { cancel(); <-done; wg.Wait() })
}

const hostileTXT = `evil.example. 60 IN TXT "<script>alert(1)</script><img src=x onerror=alert(2)>"`

func hostileAnswer(q *managementpb.DNSQuery) *managementpb.DNSQueryResult {
	return &managementpb.DNSQueryResult{Id: q.GetId(), Rcode: "NOERROR", DurationUs: 1234,
		Handler: `group:<b>ns</b>`, How: `upstream "><svg onload=alert(3)>`, Records: []string{hostileTXT}}
}

// The tester runs a test from the chosen peer and shows the agent's answer
// as text; a session runs at most a burst of tests, then one a second.
func TestDNSTestPage(t *testing.T) {
	e := newEnv(t)
	key := e.setupKey()
	_, ak := e.addPeer(key, "alpha")
	e.addPeer(key, "bravo") // never connects
	e.fakeDNSAgent(ak, hostileAnswer)
	b := e.browser()
	b.signIn(e.admin)

	b.get("/ui/dns/test").want(t, http.StatusOK, `id="dns-test"`, `<option value="TXT">TXT</option>`)
	b.get("/ui/dns").want(t, http.StatusOK, `href="/ui/dns/test"`)
	r := b.get("/ui/dns/test?" + url.Values{"peer": {"alpha"}, "name": {"evil.example"}, "type": {"TXT"}}.Encode())
	r.want(t, http.StatusOK, `id="dt-rcode">NOERROR<`, `&lt;script&gt;alert(1)&lt;/script&gt;`,
		`group:&lt;b&gt;ns&lt;/b&gt;`, `upstream &#34;&gt;&lt;svg onload=alert(3)&gt;`, `id="dt-took">1.23ms<`)
	for _, bad := range []string{"<script>alert", "<img src=x", "<svg", "<b>ns"} {
		if strings.Contains(r.body, bad) {
			t.Fatalf("markup from the agent rendered as markup (%q):\n%s", bad, r.body)
		}
	}
	// A burst of two, then the next test waits.
	b.get("/ui/dns/test?peer=alpha&name=evil.example&type=TXT").want(t, http.StatusOK, `id="dt-rcode">NOERROR<`)
	r = b.get("/ui/dns/test?peer=alpha&name=evil.example&type=TXT")
	r.want(t, http.StatusTooManyRequests, "one DNS test at a time")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// Another session has its own budget; bad input and offline peers
	// are clear errors.
	b2 := e.browser()
	b2.signIn(e.admin)
	b2.get("/ui/dns/test?peer=bravo&name=example.com&type=A").want(t, http.StatusServiceUnavailable, "is offline")
	b2.get("/ui/dns/test?peer=nobody&name=example.com&type=A").want(t, http.StatusBadRequest, "unknown peer")
	time.Sleep(time.Second) // refill (the real clock)
	b2.get("/ui/dns/test?peer=alpha&name=exa%20mple&type=A").want(t, http.StatusBadRequest, "is not a DNS name")
	b2.get("/ui/dns/test?peer=alpha&name=example.com&type=ANY").want(t, http.StatusBadRequest, "record type")
	t.Run("browser", func(t *testing.T) {
		chromium(t)
		tb := newTab(t, e.srv.URL)
		tb.signIn(e.admin)
		tb.open("/ui/dns/test?peer=alpha&name=evil.example&type=TXT")
		if !strings.Contains(tb.text("#dt-records"), "<script>alert(1)</script>") || !tb.eval(noInjectedElements) {
			t.Fatal("the record is not shown as text")
		}
		tb.clean("DNS tester with a hostile answer")
	})
}

// Users test from their own peers only.
func TestDNSTestPageUser(t *testing.T) {
	e := newEnv(t)
	key := e.setupKey()
	carol := e.user("carol", model.RoleUser)
	own, ok := e.userPeer(carol, "carol-laptop")
	other, otherKey := e.addPeer(key, "server-1")
	e.fakeDNSAgent(ok, hostileAnswer)
	e.fakeDNSAgent(otherKey, hostileAnswer)
	b := e.browser()
	b.signIn(carol.pat)
	b.get("/ui/peers").want(t, http.StatusOK, `href="/ui/dns/test"`)
	b.get("/ui/dns/test?peer="+url.QueryEscape(other.IP.String())+"&name=evil.example&type=TXT").want(t, http.StatusBadRequest, "no peer has IP")
	b.get("/ui/dns/test?peer="+other.ID+"&name=evil.example&type=TXT").want(t, http.StatusBadRequest, "unknown peer")
	b.get("/ui/dns/test?peer="+own.ID+"&name=evil.example&type=TXT").want(t, http.StatusOK, `id="dt-rcode">NOERROR<`)
	// The service refuses on its own too (the page is not the only guard).
	pr, err := e.svc.Authenticate(context.Background(), carol.oidc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.QueryDNS(management.WithPrincipal(context.Background(), pr), e.acct, other.ID, "evil.example", "TXT")
	if management.KindOf(err) != management.KindNotFound {
		t.Fatalf("service: %v, want not found", err)
	}
}

// A real agent, asked through the dashboard, resolves another peer's name
// from its local zone to that peer's overlay IP.
func TestDNSTestPageRealAgent(t *testing.T) {
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
	startAgent(t, srv, key, "dt-alpha")
	startAgent(t, srv, key, "dt-bravo")
	snap, _ := svc.Snapshot(acct)
	var bravo *model.Peer
	for _, p := range snap.Peers {
		if p.Name == "dt-bravo" {
			bravo = p
		}
	}
	e := &env{t: t, srv: &httptest.Server{URL: "http://" + srv.Addr().String()}}
	b := e.browser()
	b.signIn(srv.AdminToken())
	fqdn := bravo.DNSLabel + "." + snap.Settings.DNSDomain
	if snap.Settings.DNSDomain == "" {
		fqdn = bravo.DNSLabel + ".petrel.internal"
	}
	var last resp
	deadline := time.Now().Add(60 * time.Second)
	for {
		last = b.get("/ui/dns/test?" + url.Values{"peer": {"dt-alpha"}, "name": {fqdn}, "type": {"A"}}.Encode())
		if last.status == http.StatusOK && strings.Contains(last.body, bravo.IP.String()) && strings.Contains(last.body, `id="dt-handler">local-zone<`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer with %s: status %d\n%s", bravo.IP, last.status, last.body)
		}
		time.Sleep(1100 * time.Millisecond) // the tester's rate
	}

	t.Run("browser", func(t *testing.T) {
		chromium(t)
		tb := newTab(t, "http://"+srv.Addr().String())
		tb.signIn(srv.AdminToken())
		tb.open("/ui/dns")
		tb.do("open the tester", chromedp.Click("#dns-test-link"), chromedp.WaitVisible("#dns-test"))
		tb.setValue("#dt-peer", "dt-alpha")
		tb.setValue("#dt-name", fqdn)
		tb.selectLabel("#dt-type", "A")
		tb.do("resolve", chromedp.Click("#dt-run"), chromedp.WaitVisible("#dns-answer"))
		if got := tb.text("#dt-records"); !strings.Contains(got, bravo.IP.String()) {
			t.Fatalf("records %q lack %s", got, bravo.IP)
		}
		if h := tb.text("#dt-handler"); h != "local-zone" {
			t.Fatalf("handler %q", h)
		}
		tb.clean("DNS tester")
		tb.screenshot("dnstest")
	})
}
