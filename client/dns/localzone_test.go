package dns

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

const extNS = "198.51.100.9:53"

func zoneSettings() Settings {
	longTXT := strings.Repeat("x", 300)
	chain := []Record{}
	for i := 0; i < 10; i++ { // d0 → d1 → … → d9 → A
		chain = append(chain, Record{Name: "d" + itoa(i) + ".corp.example.", Type: "CNAME", Value: "d" + itoa(i+1) + ".corp.example."})
	}
	chain = append(chain, Record{Name: "d10.corp.example.", Type: "A", Value: "10.9.9.9"})
	return Settings{
		Domain:        "petrel.internal",
		SearchDomain:  true,
		OverlayPrefix: netip.MustParsePrefix("100.64.0.0/16"),
		Zones: []Zone{
			{Records: []Record{ // peer zone, Domain defaults to Settings.Domain
				{Name: "laptop.petrel.internal.", Type: "A", Value: "100.64.0.5"},
				{Name: "server", Type: "A", Value: "100.64.0.6"}, // relative name
			}},
			{Domain: "corp.example.", Records: append([]Record{
				{Name: "web.corp.example.", Type: "A", Value: "10.0.0.1", TTL: 60},
				{Name: "web.corp.example.", Type: "AAAA", Value: "2001:db8::1"},
				{Name: "www.corp.example.", Type: "CNAME", Value: "web.corp.example."},
				{Name: "alias.corp.example.", Type: "CNAME", Value: "www.corp.example."},
				{Name: "peer.corp.example.", Type: "CNAME", Value: "laptop.petrel.internal."},
				{Name: "ext.corp.example.", Type: "CNAME", Value: "target.outside.test."},
				{Name: "loop1.corp.example.", Type: "CNAME", Value: "loop2.corp.example."},
				{Name: "loop2.corp.example.", Type: "CNAME", Value: "loop1.corp.example."},
				{Name: "a.b.corp.example.", Type: "A", Value: "10.0.0.2"},
				{Name: "txt.corp.example.", Type: "TXT", Value: longTXT},
				{Name: "*.apps.corp.example.", Type: "A", Value: "10.0.0.3"},
				{Name: "real.apps.corp.example.", Type: "TXT", Value: "real"},
				{Name: "bad.corp.example.", Type: "A", Value: "not-an-ip"},
				{Name: "bad2.corp.example.", Type: "MX", Value: "x"},
				{Name: "elsewhere.org.", Type: "A", Value: "10.0.0.4"},
			}, chain...)},
		},
		Groups: []NameserverGroup{{ID: "ext", Servers: []netip.AddrPort{netip.MustParseAddrPort(extNS)}, Primary: true}},
	}
}

func TestLocalZone(t *testing.T) {
	mn := newMemNet(t)
	mn.handle(extNS, func(_ string, q *mdns.Msg) *mdns.Msg {
		if q.Question[0].Name == "target.outside.test." {
			return answerAddrs(q, "203.0.113.5")
		}
		return rcodeReply(q, mdns.RcodeNameError)
	})
	r := newTestResolver(t, Config{Dial: mn.Dial})
	r.Apply(zoneSettings())
	if bad := r.Status().BadRecords; bad != 3 {
		t.Fatalf("bad records %d, want 3", bad)
	}

	type want struct {
		rcode   int
		answer  []string // rr.String() prefixes, in order
		soa     bool     // SOA in authority
		aa      bool
		handler string
	}
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  want
	}{
		{"laptop.petrel.internal", mdns.TypeA, want{0, []string{"laptop.petrel.internal.\t300\tIN\tA\t100.64.0.5"}, false, true, "local-zone"}},
		{"LapTop.Petrel.Internal", mdns.TypeA, want{0, []string{"LapTop.Petrel.Internal.\t300\tIN\tA\t100.64.0.5"}, false, true, "local-zone"}},
		{"server.petrel.internal", mdns.TypeA, want{0, []string{"server.petrel.internal.\t300\tIN\tA\t100.64.0.6"}, false, true, "local-zone"}},
		{"laptop.petrel.internal", mdns.TypeAAAA, want{0, nil, true, true, "local-zone"}},              // NODATA
		{"nope.petrel.internal", mdns.TypeA, want{mdns.RcodeNameError, nil, true, true, "local-zone"}}, // NXDOMAIN
		{"web.corp.example", mdns.TypeAAAA, want{0, []string{"web.corp.example.\t300\tIN\tAAAA\t2001:db8::1"}, false, true, "local-zone"}},
		{"web.corp.example", mdns.TypeANY, want{0, []string{"web.corp.example.\t60\tIN\tA", "web.corp.example.\t300\tIN\tAAAA"}, false, true, "local-zone"}},
		{"b.corp.example", mdns.TypeA, want{0, nil, true, true, "local-zone"}}, // empty non-terminal → NODATA
		{"alias.corp.example", mdns.TypeA, want{0, []string{"alias.corp.example.\t300\tIN\tCNAME\twww.corp.example.", "www.corp.example.\t300\tIN\tCNAME\tweb.corp.example.", "web.corp.example.\t60\tIN\tA\t10.0.0.1"}, false, true, "local-zone"}},
		{"www.corp.example", mdns.TypeCNAME, want{0, []string{"www.corp.example.\t300\tIN\tCNAME\tweb.corp.example."}, false, true, "local-zone"}},
		{"www.corp.example", mdns.TypeTXT, want{0, []string{"www.corp.example.\t300\tIN\tCNAME"}, true, true, "local-zone"}}, // chain ends in NODATA
		{"peer.corp.example", mdns.TypeA, want{0, []string{"peer.corp.example.\t300\tIN\tCNAME\tlaptop.petrel.internal.", "laptop.petrel.internal.\t300\tIN\tA\t100.64.0.5"}, false, true, "local-zone"}},
		{"ext.corp.example", mdns.TypeA, want{0, []string{"ext.corp.example.\t300\tIN\tCNAME\ttarget.outside.test.", "target.outside.test.\t3600\tIN\tA\t203.0.113.5"}, false, false, "local-zone"}},
		{"loop1.corp.example", mdns.TypeA, want{mdns.RcodeServerFailure, nil, false, false, "local-zone"}},
		{"d0.corp.example", mdns.TypeA, want{mdns.RcodeServerFailure, nil, false, false, "local-zone"}}, // depth > 8
		{"d3.corp.example", mdns.TypeA, want{0, []string{"d3.", "d4.", "d5.", "d6.", "d7.", "d8.", "d9.", "d10.corp.example.\t300\tIN\tA\t10.9.9.9"}, false, true, "local-zone"}},
		{"txt.corp.example", mdns.TypeTXT, want{0, []string{"txt.corp.example.\t300\tIN\tTXT\t\"" + strings.Repeat("x", 255) + "\" \"" + strings.Repeat("x", 45) + "\""}, false, true, "local-zone"}},
		{"foo.apps.corp.example", mdns.TypeA, want{0, []string{"foo.apps.corp.example.\t300\tIN\tA\t10.0.0.3"}, false, true, "local-zone"}},
		{"x.foo.apps.corp.example", mdns.TypeA, want{0, []string{"x.foo.apps.corp.example.\t300\tIN\tA\t10.0.0.3"}, false, true, "local-zone"}},
		{"foo.apps.corp.example", mdns.TypeAAAA, want{0, nil, true, true, "local-zone"}},
		{"real.apps.corp.example", mdns.TypeA, want{0, nil, true, true, "local-zone"}},                     // exists: no wildcard
		{"apps.corp.example", mdns.TypeA, want{0, nil, true, true, "local-zone"}},                          // empty non-terminal
		{"x.real.apps.corp.example", mdns.TypeA, want{mdns.RcodeNameError, nil, true, true, "local-zone"}}, // closest encloser real.apps has no wildcard
		{"5.0.64.100.in-addr.arpa", mdns.TypePTR, want{0, []string{"5.0.64.100.in-addr.arpa.\t300\tIN\tPTR\tlaptop.petrel.internal."}, false, true, "local-zone"}},
		{"99.0.64.100.in-addr.arpa", mdns.TypePTR, want{mdns.RcodeNameError, nil, true, true, "local-zone"}},
		{"5.0.64.100.in-addr.arpa", mdns.TypeA, want{0, nil, true, true, "local-zone"}},
		{"5.0.65.100.in-addr.arpa", mdns.TypePTR, want{mdns.RcodeNameError, nil, false, false, "group:ext"}}, // outside the overlay: upstream
		{"laptop", mdns.TypeA, want{0, []string{"laptop.\t300\tIN\tA\t100.64.0.5"}, false, true, "search-domain"}},
		{"unknown", mdns.TypeA, want{mdns.RcodeNameError, nil, false, false, "group:ext"}}, // search miss passes on
		{"elsewhere.org", mdns.TypeA, want{mdns.RcodeNameError, nil, false, false, "group:ext"}},
	} {
		t.Run(tc.name+"/"+mdns.TypeToString[tc.qtype], func(t *testing.T) {
			resp, info := ask(t, r, tc.name, tc.qtype)
			if info.Handler != tc.want.handler {
				t.Fatalf("handler %q (%s), want %q", info.Handler, info.How, tc.want.handler)
			}
			if resp.Rcode != tc.want.rcode {
				t.Fatalf("rcode %s, want %s", mdns.RcodeToString[resp.Rcode], mdns.RcodeToString[tc.want.rcode])
			}
			if resp.Authoritative != tc.want.aa {
				t.Fatalf("AA %v", resp.Authoritative)
			}
			if len(resp.Answer) != len(tc.want.answer) {
				t.Fatalf("answer %v, want %v", resp.Answer, tc.want.answer)
			}
			for i, w := range tc.want.answer {
				if !strings.HasPrefix(resp.Answer[i].String(), w) {
					t.Fatalf("answer[%d] = %q, want prefix %q", i, resp.Answer[i].String(), w)
				}
			}
			hasSOA := len(resp.Ns) == 1 && resp.Ns[0].Header().Rrtype == mdns.TypeSOA
			if hasSOA != tc.want.soa {
				t.Fatalf("SOA in authority %v, want %v (%v)", hasSOA, tc.want.soa, resp.Ns)
			}
		})
	}
}

func TestSearchDomainOff(t *testing.T) {
	r := newTestResolver(t, Config{})
	s := zoneSettings()
	s.SearchDomain, s.Groups = false, nil
	r.Apply(s)
	if resp, info := ask(t, r, "laptop", mdns.TypeA); info.Handler != "none" || resp.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("single label answered with search off: %+v", info)
	}
}

func TestMostSpecificZoneWins(t *testing.T) {
	r := newTestResolver(t, Config{})
	r.Apply(Settings{Zones: []Zone{
		{Domain: "example.", Records: []Record{{Name: "a.sub.example.", Type: "A", Value: "10.0.0.1"}}},
		{Domain: "sub.example.", Records: []Record{{Name: "a.sub.example.", Type: "A", Value: "10.0.0.2"}}},
	}})
	resp, _ := ask(t, r, "a.sub.example", mdns.TypeA)
	if !slices.Equal(addrsOf(resp), []string{"10.0.0.2"}) {
		t.Fatalf("got %v", addrsOf(resp))
	}
}

func TestReverseNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string
	}{
		{"4.3.2.1.in-addr.arpa.", "1.2.3.4"},
		{"4.3.2.in-addr.arpa.", ""},
		{"04.3.2.1.in-addr.arpa.", ""},
		{"256.3.2.1.in-addr.arpa.", ""},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "2001:db8::1"},
		{"x.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", ""},
	} {
		ip, ok := reverseAddr(tc.name)
		if got := ""; ok {
			got = ip.String()
			if got != tc.want {
				t.Fatalf("%s → %s, want %s", tc.name, got, tc.want)
			}
		} else if tc.want != "" {
			t.Fatalf("%s did not parse", tc.name)
		}
	}
	for p, want := range map[string]string{
		"100.64.0.0/16":  "64.100.in-addr.arpa.",
		"100.64.0.0/10":  "100.in-addr.arpa.",
		"10.1.2.0/24":    "2.1.10.in-addr.arpa.",
		"fd00:1234::/32": "4.3.2.1.0.0.d.f.ip6.arpa.",
	} {
		if got := reverseZone(netip.MustParsePrefix(p)); got != want {
			t.Fatalf("reverseZone(%s) = %s, want %s", p, got, want)
		}
	}
}

// A reverse zone wider than the overlay (a /10 widens to 100.in-addr.arpa.)
// answers only for addresses inside the overlay; the rest passes on.
func TestPTROutsideOverlayPasses(t *testing.T) {
	r := newTestResolver(t, Config{})
	r.Apply(Settings{OverlayPrefix: netip.MustParsePrefix("100.64.0.0/10"),
		Zones: []Zone{{Records: []Record{{Name: "laptop", Type: "A", Value: "100.64.0.5"}}}}})
	if resp, info := ask(t, r, "5.0.64.100.in-addr.arpa", mdns.TypePTR); info.Handler != "local-zone" || len(resp.Answer) != 1 {
		t.Fatalf("inside: %+v %v", info, resp)
	}
	if _, info := ask(t, r, "5.0.200.100.in-addr.arpa", mdns.TypePTR); info.Handler != "none" {
		t.Fatalf("outside the overlay answered by %+v", info)
	}
}
