package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"petrel/client/dns"
	"petrel/proto/managementpb"
)

type fakeQuerier struct {
	ans   dns.Answer
	err   error
	asked []string
}

func (f *fakeQuerier) Query(_ context.Context, name string, qtype uint16) (dns.Answer, error) {
	f.asked = append(f.asked, name+"/"+mdns.TypeToString[qtype])
	return f.ans, f.err
}

func TestAnswerDNSQuery(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes: cut on a rune boundary
	many := make([]string, 100)
	for i := range many {
		many[i] = "r"
	}
	for _, tc := range []struct {
		name    string
		r       *fakeQuerier
		q       *managementpb.DNSQuery
		wantErr string
		check   func(*managementpb.DNSQueryResult) bool
	}{
		{"dns off", nil, &managementpb.DNSQuery{Id: 1, Name: "x.example", Type: "A"}, "DNS is off on this agent", nil},
		{"bad type", &fakeQuerier{}, &managementpb.DNSQuery{Id: 2, Name: "x.example", Type: "AXFR"}, "not supported", nil},
		{"long name", &fakeQuerier{}, &managementpb.DNSQuery{Id: 3, Name: strings.Repeat("a", 300), Type: "A"}, "too long", nil},
		{"resolver error", &fakeQuerier{err: errors.New("dns: invalid name")}, &managementpb.DNSQuery{Id: 4, Name: "x", Type: "A"}, "invalid name", nil},
		{"answer", &fakeQuerier{ans: dns.Answer{Rcode: "NOERROR", Handler: "local-zone", How: "zone", Records: []string{"a", long}}},
			&managementpb.DNSQuery{Id: 5, Name: "b.petrel.internal", Type: "TXT"}, "", func(r *managementpb.DNSQueryResult) bool {
				return r.Rcode == "NOERROR" && r.Handler == "local-zone" && r.How == "zone" && len(r.Records) == 2 &&
					r.Records[0] == "a" && len(r.Records[1]) == maxDNSQueryRecord && strings.Count(r.Records[1], "é") == maxDNSQueryRecord/2
			}},
		{"many records", &fakeQuerier{ans: dns.Answer{Rcode: "NOERROR", Records: many}},
			&managementpb.DNSQuery{Id: 6, Name: "x", Type: "A"}, "", func(r *managementpb.DNSQueryResult) bool {
				return len(r.Records) == maxDNSQueryRecords
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r dnsQuerier
			if tc.r != nil {
				r = tc.r
			}
			res := answerDNSQuery(context.Background(), r, tc.q)
			if res.GetId() != tc.q.GetId() {
				t.Fatalf("id %d, want %d", res.GetId(), tc.q.GetId())
			}
			if !strings.Contains(res.GetError(), tc.wantErr) || tc.wantErr == "" && res.GetError() != "" {
				t.Fatalf("error %q, want %q", res.GetError(), tc.wantErr)
			}
			if tc.wantErr != "" && tc.r != nil && len(tc.r.asked) > 0 && tc.name != "resolver error" {
				t.Fatalf("asked the resolver %v", tc.r.asked)
			}
			if tc.check != nil && !tc.check(res) {
				t.Fatalf("result %v", res)
			}
		})
	}
}

func TestDNSQueryStateLimits(t *testing.T) {
	var s dnsQueryState
	var runs, busy int
	for range maxDNSQueryJobs {
		run, ok := s.acquire()
		if !ok {
			t.Fatal("refused within the job limit")
		}
		if run {
			runs++
		} else {
			busy++
		}
	}
	if runs != maxDNSQueries || busy != maxDNSQueryJobs-maxDNSQueries {
		t.Fatalf("runs %d, busy %d", runs, busy)
	}
	if _, ok := s.acquire(); ok {
		t.Fatal("a job past the limit was taken")
	}
	s.release(true)
	if run, ok := s.acquire(); !run || !ok {
		t.Fatalf("after a release: run %v ok %v", run, ok)
	}
	for range maxDNSQueries {
		s.release(true)
	}
	for range maxDNSQueryJobs - maxDNSQueries {
		s.release(false)
	}
	s.stop() // returns: nothing runs
	if _, ok := s.acquire(); ok {
		t.Fatal("a job taken after stop")
	}
}
