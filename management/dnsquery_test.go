package management

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"petrel/internal/keys"
	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/proto/managementpb"
)

// dnsAgent is an in-process Sync stream that takes DNS tests: every
// DNSQuery it receives goes to answer (on its own goroutine, as the agent
// does), whose result, if any, is reported through the service.
type dnsAgent struct {
	*stream
	mu      sync.Mutex
	queries []*managementpb.DNSQuery
}

func openDNSAgent(t *testing.T, s *Service, k keys.Private, caps bool, answer func(*managementpb.DNSQuery) *managementpb.DNSQueryResult) *dnsAgent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &dnsAgent{stream: &stream{cancel: cancel, msgs: make(chan *managementpb.SyncResponse, 1024), done: make(chan error, 1)}}
	req := &managementpb.SyncRequest{}
	if caps {
		req.Capabilities = []managementpb.Capability{managementpb.Capability_CAPABILITY_DNS_QUERY}
	}
	var wg sync.WaitGroup
	go func() {
		a.done <- s.Sync(ctx, k.Public(), req, func(r *managementpb.SyncResponse) error {
			if q := r.GetDnsQuery(); q != nil {
				a.mu.Lock()
				a.queries = append(a.queries, q)
				a.mu.Unlock()
				if answer != nil {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if res := answer(q); res != nil {
							_ = s.ReportDNSQuery(k.Public(), res)
						}
					}()
				}
			}
			a.msgs <- r
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-a.done; wg.Wait() })
	a.next(t) // the full map
	return a
}

func (a *dnsAgent) seen() []*managementpb.DNSQuery {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*managementpb.DNSQuery(nil), a.queries...)
}

func adminCtx(acct string) context.Context {
	return WithPrincipal(context.Background(), Principal{AccountID: acct, Role: model.RoleAdmin, Via: "admin-token"})
}

func echoAnswer(q *managementpb.DNSQuery) *managementpb.DNSQueryResult {
	return &managementpb.DNSQueryResult{Id: q.GetId(), Rcode: "NOERROR", Handler: "local-zone", How: "zone petrel.internal.",
		DurationUs: 1500, Records: []string{q.GetName() + "\t300\tIN\t" + q.GetType() + "\t100.64.0.9"}}
}

func TestQueryDNSRoundTrip(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct, ks, ids := meshAccount(t, s, 2)
	a := openDNSAgent(t, s, ks[0], true, echoAnswer)
	res, err := s.QueryDNS(adminCtx(acct), acct, ids[0], " peer1.petrel.internal ", "a")
	if err != nil {
		t.Fatal(err)
	}
	if res.Rcode != "NOERROR" || res.Handler != "local-zone" || res.Type != "A" || res.Name != "peer1.petrel.internal" ||
		len(res.Records) != 1 || res.Records[0] != "peer1.petrel.internal 300 IN A 100.64.0.9" || res.Duration != 1500*time.Microsecond {
		t.Fatalf("result %+v", res)
	}
	// The query went down the stream as a message of its own with the
	// next serial (the agent checks continuity).
	msg := a.next(t)
	if msg.GetDnsQuery() == nil || msg.GetFull() != nil || msg.GetDelta() != nil || msg.GetServerConfig() != nil {
		t.Fatalf("query message %v", msg)
	}
	st, _ := s.account(acct)
	if want := uint64(st.view().acct.Version) + 1; msg.GetSerial() != want {
		t.Fatalf("query serial %d, want %d", msg.GetSerial(), want)
	}
	// A PTR question may name an IP: the agent is asked its reverse name.
	if _, err := s.QueryDNS(adminCtx(acct), acct, ids[0], "100.64.0.9", "PTR"); err != nil {
		t.Fatal(err)
	}
	if q := a.next(t).GetDnsQuery(); q.GetName() != "9.0.64.100.in-addr.arpa." || q.GetType() != "PTR" {
		t.Fatalf("PTR query %v", q)
	}
	// Nothing stays behind.
	s.dnsTests.mu.Lock()
	defer s.dnsTests.mu.Unlock()
	if len(s.dnsTests.waiting) != 0 || len(s.dnsTests.perPeer) != 0 {
		t.Fatalf("left behind: %v %v", s.dnsTests.waiting, s.dnsTests.perPeer)
	}
}

func TestQueryDNSRefusals(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct, ks, ids := meshAccount(t, s, 3)
	openDNSAgent(t, s, ks[0], true, echoAnswer)
	openDNSAgent(t, s, ks[1], false, echoAnswer) // an agent from before DNS tests
	ctx := adminCtx(acct)
	for _, tc := range []struct{ name, qtype, want string }{
		{"", "A", "give a name"},
		{"   ", "A", "give a name"},
		{"a..b", "A", "not a DNS name"},
		{"<script>.example", "A", "not a DNS name"},
		{strings.Repeat("a", 60) + "." + strings.Repeat("b.", 100), "A", "at most 253"},
		{"example.com", "ANY", "record type"},
		{"example.com", "", "record type"},
		{"example.com", "AXFR", "record type"},
	} {
		_, err := s.QueryDNS(ctx, acct, ids[0], tc.name, tc.qtype)
		wantKind(t, err, KindInvalid, tc.name+"/"+tc.qtype)
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q/%q: error %q, want it to say %q", tc.name, tc.qtype, err, tc.want)
		}
	}
	_, err := s.QueryDNS(ctx, acct, "no-such-peer", "example.com", "A")
	wantKind(t, err, KindNotFound, "unknown peer")
	// A user sees only their own peers; these were added with a setup key.
	user := WithPrincipal(context.Background(), Principal{AccountID: acct, Role: model.RoleUser, UserID: "u1", Via: "oidc"})
	_, err = s.QueryDNS(user, acct, ids[0], "example.com", "A")
	wantKind(t, err, KindNotFound, "a user's test from another's peer")
	_, err = s.QueryDNS(ctx, acct, ids[1], "example.com", "A")
	wantKind(t, err, KindPrecondition, "an agent without CAPABILITY_DNS_QUERY")
	_, err = s.QueryDNS(ctx, acct, ids[2], "example.com", "A")
	wantKind(t, err, KindUnavailable, "a peer without a stream")
	if !strings.Contains(err.Error(), "offline") {
		t.Fatalf("offline error %q", err)
	}
}

// A user's own peer (registered by signing in) may be tested by the user.
func TestQueryDNSUserOwnPeer(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct, ks, ids := meshAccount(t, s, 1)
	openDNSAgent(t, s, ks[0], true, echoAnswer)
	// Make the peer u1's in memory only (no such user exists, which a
	// stream opening would refuse): enough for QueryDNS's check.
	st, _ := s.account(acct)
	st.mu.Lock()
	v := st.view()
	p := *v.acct.Peers[ids[0]]
	p.UserID = "u1"
	v.acct.Peers[ids[0]] = &p
	st.mu.Unlock()
	user := WithPrincipal(context.Background(), Principal{AccountID: acct, Role: model.RoleUser, UserID: "u1", Via: "oidc"})
	if _, err := s.QueryDNS(user, acct, ids[0], "example.com", "TXT"); err != nil {
		t.Fatal(err)
	}
	other := WithPrincipal(context.Background(), Principal{AccountID: acct, Role: model.RoleUser, UserID: "u2", Via: "oidc"})
	_, err := s.QueryDNS(other, acct, ids[0], "example.com", "TXT")
	wantKind(t, err, KindNotFound, "another user's peer")
}

func TestQueryDNSTimeoutAndInFlightLimit(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct, ks, ids := meshAccount(t, s, 1)
	s.dnsTests.timeout = 2 * time.Second
	a := openDNSAgent(t, s, ks[0], true, nil) // never answers
	ctx := adminCtx(acct)
	var wg sync.WaitGroup
	errs := make(chan error, maxDNSQueriesPerPeer)
	for range maxDNSQueriesPerPeer {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.QueryDNS(ctx, acct, ids[0], "example.com", "A")
			errs <- err
		}()
	}
	waitFor(t, "the queries in flight", func() bool { return len(a.seen()) == maxDNSQueriesPerPeer })
	_, err := s.QueryDNS(ctx, acct, ids[0], "example.com", "A")
	wantKind(t, err, KindExhausted, "one query too many")
	wg.Wait()
	close(errs)
	for err := range errs {
		wantKind(t, err, KindUnavailable, "no answer")
		if !strings.Contains(err.Error(), "did not answer") {
			t.Fatalf("timeout error %q", err)
		}
	}
	// The slots are free again; a late answer is ignored.
	if err := s.ReportDNSQuery(ks[0].Public(), &managementpb.DNSQueryResult{Id: a.seen()[0].GetId(), Rcode: "NOERROR"}); err != nil {
		t.Fatal(err)
	}
	s.dnsTests.mu.Lock()
	n := len(s.dnsTests.waiting)
	s.dnsTests.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d queries still waiting", n)
	}
}

// Only the peer asked may answer; an unknown id changes nothing; only a
// peer with a stream may answer at all, and not too often.
func TestReportDNSQueryChecks(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct, ks, ids := meshAccount(t, s, 3)
	s.dnsTests.timeout = time.Second
	a := openDNSAgent(t, s, ks[0], true, nil)
	openDNSAgent(t, s, ks[1], true, nil)
	go func() {
		// Peer 1 answers peer 0's query: ignored.
		for len(a.seen()) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		_ = s.ReportDNSQuery(ks[1].Public(), &managementpb.DNSQueryResult{Id: a.seen()[0].GetId(), Rcode: "NOERROR", Records: []string{"forged"}})
	}()
	_, err := s.QueryDNS(adminCtx(acct), acct, ids[0], "example.com", "A")
	wantKind(t, err, KindUnavailable, "an answer from another peer")

	if err := s.ReportDNSQuery(ks[0].Public(), &managementpb.DNSQueryResult{Id: 999}); err != nil {
		t.Fatalf("unknown id: %v", err)
	}
	err = s.ReportDNSQuery(ks[2].Public(), &managementpb.DNSQueryResult{Id: 1})
	wantKind(t, err, KindPrecondition, "a peer without a stream")
	stranger := mgmttest.NewKey(t)
	err = s.ReportDNSQuery(stranger.Public(), &managementpb.DNSQueryResult{Id: 1})
	wantKind(t, err, KindNotFound, "an unknown key")
	var last error
	for range dnsResultBurst + 2 {
		last = s.ReportDNSQuery(ks[1].Public(), &managementpb.DNSQueryResult{Id: 999})
	}
	wantKind(t, last, KindExhausted, "answers past the rate")
}

// The server bounds what an agent answers.
func TestQueryDNSBoundsAnswers(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct, ks, ids := meshAccount(t, s, 1)
	openDNSAgent(t, s, ks[0], true, func(q *managementpb.DNSQuery) *managementpb.DNSQueryResult {
		r := &managementpb.DNSQueryResult{Id: q.GetId(), Rcode: strings.Repeat("R", 100), Handler: "h\x1b[31m" + strings.Repeat("h", 100),
			How: strings.Repeat("é", 300), Error: strings.Repeat("e", 1000), DurationUs: 1 << 31}
		for range maxDNSRecords + 8 {
			r.Records = append(r.Records, strings.Repeat("x", 2000))
		}
		return r
	})
	res, err := s.QueryDNS(adminCtx(acct), acct, ids[0], "example.com", "TXT")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != maxDNSRecords || !res.Truncated {
		t.Fatalf("%d records, truncated %v", len(res.Records), res.Truncated)
	}
	for _, r := range res.Records {
		if len(r) != maxDNSRecordLen {
			t.Fatalf("record of %d bytes", len(r))
		}
	}
	if len(res.Rcode) != maxDNSRcodeLen || len(res.Handler) != maxDNSHandlerLen || strings.ContainsRune(res.Handler, 0x1b) ||
		len(res.How) != maxDNSHowLen || len(res.Error) != maxDNSErrorLen || res.Duration != maxDNSDuration {
		t.Fatalf("bounds: rcode %d, handler %q, how %d, error %d, duration %s", len(res.Rcode), res.Handler, len(res.How), len(res.Error), res.Duration)
	}
}

// A stream that ends while a query waits ends the wait at once.
func TestQueryDNSStreamEnds(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct, ks, ids := meshAccount(t, s, 1)
	a := openDNSAgent(t, s, ks[0], true, nil)
	go func() {
		for len(a.seen()) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		s.hub.session(ids[0]).close(Errorf(KindUnavailable, "replaced")) // as a newer stream of the peer does
	}()
	start := time.Now()
	_, err := s.QueryDNS(adminCtx(acct), acct, ids[0], "example.com", "A")
	wantKind(t, err, KindUnavailable, "stream replaced")
	if !strings.Contains(err.Error(), "stream ended") || time.Since(start) > dnsQueryTimeout/2 {
		t.Fatalf("error %q after %s", err, time.Since(start))
	}
}

// Whatever an agent sends, the result stays within its bounds, valid UTF-8
// without control characters; whatever a caller asks, checkDNSQuestion
// either refuses it or returns a name and type within theirs.
func FuzzDNSTestBounds(f *testing.F) {
	f.Add("NOERROR", "local-zone", "upstream 10.0.0.2:53", "", "a.example. 60 IN A 100.64.0.1", "a.example", "A")
	f.Add("\xff\xfe", "h\x00\x1b[31m", strings.Repeat("é", 200), "\u202eevil", "\t\n\r", "100.64.0.1", "ptr")
	f.Fuzz(func(t *testing.T, rcode, handler, how, errText, record, name, qtype string) {
		res := dnsTestResult(&managementpb.DNSQueryResult{Rcode: rcode, Handler: handler, How: how, Error: errText,
			Records: []string{record, record}})
		for _, c := range []struct {
			s string
			n int
		}{{res.Rcode, maxDNSRcodeLen}, {res.Handler, maxDNSHandlerLen}, {res.How, maxDNSHowLen}, {res.Error, maxDNSErrorLen},
			{res.Records[0], maxDNSRecordLen}} {
			if len(c.s) > c.n || !utf8.ValidString(c.s) || strings.ContainsFunc(c.s, func(r rune) bool { return !unicode.IsPrint(r) }) {
				t.Fatalf("%q: over %d bytes or not printable UTF-8", c.s, c.n)
			}
		}
		n, ty, err := checkDNSQuestion(name, qtype)
		if err != nil {
			if KindOf(err) != KindInvalid {
				t.Fatalf("kind %d: %v", KindOf(err), err)
			}
			return
		}
		if len(strings.TrimSuffix(n, ".")) > maxDNSName || !validDomain(n) || !slices.Contains(DNSQueryTypes, ty) {
			t.Fatalf("accepted %q %q", n, ty)
		}
	})
}
