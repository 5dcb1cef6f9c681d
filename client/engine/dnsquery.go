package engine

import (
	"context"
	"errors"
	"sync"
	"time"

	mdns "github.com/miekg/dns"

	"petrel/client/dns"
	"petrel/proto/managementpb"
)

// DNS tests: management may ask the agent, on its Sync stream
// (SyncResponse.dns_query, the dashboard's DNS tester), to resolve a name
// through the agent's own resolver, as a program on this host would. onSync
// calls startDNSQuery, which never blocks the stream: each test runs on its
// own goroutine (tracked by dnsQueryState, waited for by Stop before the
// resolver and the device go) and sends its result with ReportDNSQuery.
// At most maxDNSQueries run at once; extra ones are answered at once with
// an error, and past maxDNSQueryJobs goroutines a query is dropped (the
// server gives up on it after its timeout).
const (
	maxDNSQueries       = 4
	maxDNSQueryJobs     = 2 * maxDNSQueries
	dnsQueryTimeout     = 5 * time.Second
	dnsQueryReportLimit = 10 * time.Second
	maxDNSQueryRecords  = 64  // the server keeps 32 and says when there were more
	maxDNSQueryRecord   = 512 // bytes per record; the server cuts to this too
	maxDNSQueryName     = 253
)

// ErrDNSOff is the error result of a DNS test on an agent without a
// running resolver.
var ErrDNSOff = errors.New("DNS is off on this agent")

// dnsQueryTypes are the record types a DNS test may ask for (the server's
// list: management.DNSQueryTypes).
var dnsQueryTypes = map[string]uint16{
	"A": mdns.TypeA, "AAAA": mdns.TypeAAAA, "CNAME": mdns.TypeCNAME, "MX": mdns.TypeMX, "TXT": mdns.TypeTXT,
	"SRV": mdns.TypeSRV, "PTR": mdns.TypePTR, "NS": mdns.TypeNS, "SOA": mdns.TypeSOA,
}

// dnsQueryState counts the running DNS tests.
type dnsQueryState struct {
	mu      sync.Mutex
	stopped bool
	jobs    int // goroutines (running tests and pending error reports)
	running int // tests resolving now
	wg      sync.WaitGroup
}

// acquire reserves a goroutine for a test: run says whether it may
// resolve (false: answer "busy"); ok false drops the query.
func (s *dnsQueryState) acquire() (run, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.jobs >= maxDNSQueryJobs {
		return false, false
	}
	s.jobs++
	s.wg.Add(1)
	if s.running < maxDNSQueries {
		s.running++
		return true, true
	}
	return false, true
}

func (s *dnsQueryState) release(ran bool) {
	s.mu.Lock()
	s.jobs--
	if ran {
		s.running--
	}
	s.mu.Unlock()
	s.wg.Done()
}

// stop refuses new tests and waits for the running ones (Stop, after the
// engine's context is canceled).
func (s *dnsQueryState) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.wg.Wait()
}

// startDNSQuery runs q in the background and reports its result.
func (e *Engine) startDNSQuery(q *managementpb.DNSQuery) {
	run, ok := e.dq.acquire()
	if !ok {
		e.log.Debug("DNS test dropped: too many running", "id", q.GetId())
		return
	}
	go func() {
		defer e.dq.release(run)
		var res *managementpb.DNSQueryResult
		if run {
			var r dnsQuerier
			if res := e.resolver(); res != nil { // a nil *dns.Resolver must not become a non-nil interface
				r = res
			}
			res = answerDNSQuery(e.ctx, r, q)
			if r == nil {
				if why := e.DNSStatus().Error; why != "" {
					res.Error += " (" + cut(why, 128) + ")"
				}
			}
		} else {
			res = &managementpb.DNSQueryResult{Id: q.GetId(), Error: "too many DNS tests running on this agent; try again"}
		}
		ctx, cancel := context.WithTimeout(e.ctx, dnsQueryReportLimit)
		defer cancel()
		if err := e.mgmt.ReportDNSQuery(ctx, e.cfg.Key, res); err != nil {
			e.log.Debug("DNS test result not taken", "id", q.GetId(), "err", describe(err))
		}
	}()
}

// dnsQuerier is the part of the resolver a DNS test uses.
type dnsQuerier interface {
	Query(ctx context.Context, name string, qtype uint16) (dns.Answer, error)
}

// answerDNSQuery resolves q through r (nil: DNS is off) within
// dnsQueryTimeout and builds the result.
func answerDNSQuery(ctx context.Context, r dnsQuerier, q *managementpb.DNSQuery) *managementpb.DNSQueryResult {
	out := &managementpb.DNSQueryResult{Id: q.GetId()}
	qtype, ok := dnsQueryTypes[q.GetType()]
	switch {
	case r == nil:
		out.Error = ErrDNSOff.Error()
		return out
	case !ok:
		out.Error = "record type " + cut(q.GetType(), 16) + " is not supported"
		return out
	case len(q.GetName()) > maxDNSQueryName+1: // a trailing dot may come on top
		out.Error = "name too long"
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, dnsQueryTimeout)
	defer cancel()
	start := time.Now()
	a, err := r.Query(ctx, q.GetName(), qtype)
	out.DurationUs = uint32(min(time.Since(start).Microseconds(), int64(^uint32(0))))
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Rcode, out.Handler, out.How = a.Rcode, a.Handler, a.How
	for i, rec := range a.Records {
		if i == maxDNSQueryRecords {
			break
		}
		out.Records = append(out.Records, cut(rec, maxDNSQueryRecord))
	}
	return out
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // s[n] continues a sequence: cut before it starts
		n--
	}
	return s[:n]
}
