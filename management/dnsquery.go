package management

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	mdns "github.com/miekg/dns"

	"petrel/internal/keys"
	"petrel/internal/ratelimit"
	"petrel/proto/managementpb"
)

// DNS tests (the dashboard's DNS tester): QueryDNS sends a DNSQuery down
// the peer's Sync stream on this instance (as a message with the next
// serial, like a relay-token refresh) and waits for the agent's
// DNSQueryResult, which arrives through the ReportDNSQuery RPC
// (ReportDNSQuery below) and is matched by id. Nothing is stored: a test
// is live state between one dashboard request and one agent.
//
// With several instances (HA) each one holds only the streams of the
// agents connected to it; QueryDNS reaches only those (there is no
// forwarding between instances).

// DNS test bounds. A query waits dnsQueryTimeout for its answer; a peer
// has at most maxDNSQueriesPerPeer queries in flight (the stream's query
// channel holds as many, so sending never blocks). Results are cut to
// maxDNSRecords records of maxDNSRecordLen bytes and the other strings to
// their bounds; each peer may answer dnsResultBurst times at once, then
// dnsResultRate times a second.
const (
	maxDNSName           = 253
	dnsQueryTimeout      = 8 * time.Second
	maxDNSQueriesPerPeer = 4
	maxDNSRecords        = 32
	maxDNSRecordLen      = 512
	maxDNSRcodeLen       = 16
	maxDNSHandlerLen     = 64
	maxDNSHowLen         = 256
	maxDNSErrorLen       = 256
	maxDNSDuration       = time.Minute
	dnsResultRate        = 2
	dnsResultBurst       = 8
	maxDNSAnswerers      = 1 << 16 // peers the answer rate limiter tracks
)

// DNSQueryTypes are the record types the DNS tester asks for.
var DNSQueryTypes = []string{"A", "AAAA", "CNAME", "MX", "TXT", "SRV", "PTR", "NS", "SOA"}

// DNSTestResult is an agent's answer to a DNS test.
type DNSTestResult struct {
	Name, Type string   // as asked (a PTR for an IP asks for its reverse name)
	Rcode      string   // "NOERROR", "NXDOMAIN", ...; empty when Error is set
	Records    []string // answer records in zone-file form
	Truncated  bool     // the agent sent more than maxDNSRecords records
	Handler    string   // which of the agent's handlers answered
	How        string   // how it answered (upstream, cache, ...)
	Duration   time.Duration
	RoundTrip  time.Duration // from sending the query to receiving the answer
	Error      string        // the agent could not run the query
}

// dnsTests are the DNS tests waiting for their agents' answers.
type dnsTests struct {
	mu      sync.Mutex
	next    uint64
	waiting map[uint64]*dnsWait // by query ID
	perPeer map[string]int      // queries in flight by peer ID
	limit   *ratelimit.Limiter[string]
	timeout time.Duration // 0: dnsQueryTimeout (tests shorten it)
}

type dnsWait struct {
	peerID string
	answer chan *managementpb.DNSQueryResult // cap 1
}

// begin reserves a query slot of peerID; false when it has too many.
func (t *dnsTests) begin(peerID string) (uint64, *dnsWait, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perPeer[peerID] >= maxDNSQueriesPerPeer {
		return 0, nil, false
	}
	if t.waiting == nil {
		t.waiting, t.perPeer = map[uint64]*dnsWait{}, map[string]int{}
	}
	t.next++
	w := &dnsWait{peerID: peerID, answer: make(chan *managementpb.DNSQueryResult, 1)}
	t.waiting[t.next] = w
	t.perPeer[peerID]++
	return t.next, w, true
}

// end releases the query's slot; a late answer is then ignored.
func (t *dnsTests) end(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.waiting[id]
	if w == nil {
		return
	}
	delete(t.waiting, id)
	if t.perPeer[w.peerID]--; t.perPeer[w.peerID] <= 0 {
		delete(t.perPeer, w.peerID)
	}
}

// answer hands r to the query it answers if peerID is the peer asked and
// nobody answered yet; it reports whether r was taken.
func (t *dnsTests) answer(peerID string, r *managementpb.DNSQueryResult) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.waiting[r.GetId()]
	if w == nil || w.peerID != peerID {
		return false
	}
	select {
	case w.answer <- r:
		return true
	default: // answered already
		return false
	}
}

func (t *dnsTests) allow(peerID string) (bool, time.Duration) {
	t.mu.Lock()
	if t.limit == nil {
		t.limit = ratelimit.New[string](dnsResultRate, dnsResultBurst, maxDNSAnswerers)
	}
	l := t.limit
	t.mu.Unlock()
	return l.Allow(peerID)
}

// QueryDNS asks the agent of peerID to resolve name (type qtype, one of
// DNSQueryTypes; a PTR question may name an IP) through its own resolver
// and returns its answer. The caller in ctx, if any, must see the peer:
// admins see every peer, users their own (others are KindNotFound).
// Errors: KindInvalid for a bad name or type; KindUnavailable when the
// peer has no Sync stream on this instance, its stream ends first, or it
// does not answer within 8 s; KindPrecondition for an agent too old to
// take DNS tests; KindExhausted with too many tests in flight on the peer.
func (s *Service) QueryDNS(ctx context.Context, accountID, peerID, name, qtype string) (*DNSTestResult, error) {
	if err := s.running(); err != nil {
		return nil, err
	}
	name, qtype, err := checkDNSQuestion(name, qtype)
	if err != nil {
		return nil, err
	}
	st, err := s.account(accountID)
	if err != nil {
		return nil, err
	}
	p := st.view().acct.Peers[peerID]
	if caller, ok := PrincipalFrom(ctx); ok && p != nil && !caller.IsAdmin() && (p.UserID == "" || p.UserID != caller.UserID) {
		p = nil // users see only their own peers
	}
	if p == nil {
		return nil, Errorf(KindNotFound, "peer %q not found", peerID)
	}
	sess := s.hub.session(peerID)
	if sess == nil {
		if s.follow != nil {
			return nil, Errorf(KindUnavailable, "the agent of %s has no Sync stream on this server instance: it is offline or connected to another instance (DNS tests reach only agents connected to the instance that serves the request)", p.Name)
		}
		return nil, Errorf(KindUnavailable, "the agent of %s is offline", p.Name)
	}
	if sess.queries == nil {
		return nil, Errorf(KindPrecondition, "the agent of %s is too old to run DNS tests; upgrade it", p.Name)
	}
	id, w, ok := s.dnsTests.begin(peerID)
	if !ok {
		return nil, &Error{Kind: KindExhausted, Msg: "too many DNS tests in flight on this peer; retry later", RetryAfter: time.Second}
	}
	defer s.dnsTests.end(id)
	start := time.Now()
	select {
	case sess.queries <- &managementpb.DNSQuery{Id: id, Name: name, Type: qtype}:
	default: // cannot happen: the channel holds maxDNSQueriesPerPeer and begin reserved a place
		return nil, &Error{Kind: KindExhausted, Msg: "too many DNS tests in flight on this peer; retry later", RetryAfter: time.Second}
	}
	wait := dnsQueryTimeout
	if s.dnsTests.timeout > 0 {
		wait = s.dnsTests.timeout
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-w.answer:
		out := dnsTestResult(r)
		out.Name, out.Type, out.RoundTrip = name, qtype, time.Since(start)
		return out, nil
	case <-sess.done:
		return nil, Errorf(KindUnavailable, "the agent's Sync stream ended before it answered; try again")
	case <-timer.C:
		return nil, Errorf(KindUnavailable, "the agent did not answer within %s", wait)
	case <-ctx.Done():
		return nil, &Error{Kind: KindUnavailable, Msg: "DNS test canceled", Err: ctx.Err()}
	}
}

// checkDNSQuestion validates a DNS test's name and type and returns them
// normalized (type upper case; an IP under PTR becomes its reverse name).
func checkDNSQuestion(name, qtype string) (string, string, error) {
	qtype = strings.ToUpper(strings.TrimSpace(qtype))
	if !slices.Contains(DNSQueryTypes, qtype) {
		return "", "", Errorf(KindInvalid, "record type %q: want one of %s", cutClean(qtype, 16), strings.Join(DNSQueryTypes, ", "))
	}
	name = strings.TrimSpace(name)
	if qtype == "PTR" {
		if ip, err := netip.ParseAddr(name); err == nil {
			rev, err := mdns.ReverseAddr(ip.Unmap().String())
			if err == nil {
				name = rev
			}
		}
	}
	if name == "" {
		return "", "", Errorf(KindInvalid, "give a name to look up")
	}
	if len(strings.TrimSuffix(name, ".")) > maxDNSName {
		return "", "", Errorf(KindInvalid, "name of %d bytes: a DNS name has at most %d", len(name), maxDNSName)
	}
	if !validDomain(name) {
		return "", "", Errorf(KindInvalid, "%q is not a DNS name (labels of letters, digits, '-' and '_', at most 63 bytes each)", cutClean(name, 64))
	}
	return name, qtype, nil
}

// ReportDNSQuery takes an agent's answer to a DNS test. Only a peer with
// a live Sync stream may answer (KindPrecondition otherwise); past the
// per-peer rate it is KindExhausted. An answer to a query this peer was
// not asked, or was asked and has answered or given up on, is ignored.
func (s *Service) ReportDNSQuery(peerKey keys.Public, r *managementpb.DNSQueryResult) error {
	if err := s.running(); err != nil {
		return err
	}
	ref, ok := s.lookupKey(peerKey)
	if !ok {
		return Errorf(KindNotFound, "report DNS query: this key is not a registered peer")
	}
	if connected, _ := s.hub.status(ref.peerID); !connected {
		return Errorf(KindPrecondition, "report DNS query: no sync stream; open Sync first")
	}
	if ok, retry := s.dnsTests.allow(ref.peerID); !ok {
		return &Error{Kind: KindExhausted, Msg: "report DNS query: too many answers; retry later", RetryAfter: retry}
	}
	s.dnsTests.answer(ref.peerID, r)
	return nil
}

// dnsTestResult converts and bounds an agent's answer.
func dnsTestResult(r *managementpb.DNSQueryResult) *DNSTestResult {
	out := &DNSTestResult{
		Rcode:    cutClean(r.GetRcode(), maxDNSRcodeLen),
		Handler:  cutClean(r.GetHandler(), maxDNSHandlerLen),
		How:      cutClean(r.GetHow(), maxDNSHowLen),
		Error:    cutClean(r.GetError(), maxDNSErrorLen),
		Duration: min(time.Duration(r.GetDurationUs())*time.Microsecond, maxDNSDuration),
	}
	recs := r.GetRecords()
	if len(recs) > maxDNSRecords {
		recs, out.Truncated = recs[:maxDNSRecords], true
	}
	for _, rec := range recs {
		out.Records = append(out.Records, cutClean(rec, maxDNSRecordLen))
	}
	return out
}

// cutClean keeps valid, printable UTF-8 of at most n bytes; tabs (which
// separate a record's fields) become spaces.
func cutClean(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if r == '\t' {
			r = ' '
		}
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > n {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
