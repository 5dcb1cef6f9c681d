package ui

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"petrel/management"
)

// The DNS tester (/ui/dns/test): a chosen agent resolves a name through
// its own resolver (management.Service.QueryDNS sends the question down
// its Sync stream) and the page shows the rcode, the records, which of the
// agent's handlers answered and how, and how long it took. The question is
// a GET (it changes nothing, so it is a shareable URL), but each one makes
// an agent work: a session runs at most dnsProbeBurst tests at once, then
// one every 1/dnsProbeRate seconds. Admins test from any peer, users from
// their own. With several server instances only agents connected to the
// instance that serves the page can be asked.
const (
	dnsProbeRate  = 1
	dnsProbeBurst = 2
	maxDNSProbers = 65536 // sessions the limiter tracks
)

// dnsTest is the tester's form and, once run, the agent's answer.
type dnsTest struct {
	Peer, Name, Type string
	Ran              bool
	PeerName         string
	Res              management.DNSTestResult // strings made safe to show (display)
	Took, RoundTrip  string
}

type dnsTestData struct {
	Test  dnsTest
	Types []option
	Peers []string // suggestions: the visible peers' names
}

// dnsTestPage shows the tester and runs it when the query asks (peer and
// name set).
func (h *Handler) dnsTestPage(rq *req) error {
	q := rq.r.URL.Query()
	d := dnsTestData{Test: dnsTest{Peer: q.Get("peer"), Name: q.Get("name"), Type: strings.ToUpper(strings.TrimSpace(q.Get("type")))}}
	if d.Test.Type == "" {
		d.Test.Type = "A"
	}
	for _, t := range management.DNSQueryTypes {
		d.Types = append(d.Types, option{Value: t, Label: t, Selected: t == d.Test.Type})
	}
	for _, p := range visiblePeers(rq) {
		d.Peers = append(d.Peers, display(p.Name))
	}
	if !q.Has("peer") && !q.Has("name") {
		h.render(rq, http.StatusOK, "dnstest", "DNS test", d)
		return nil
	}
	if err := h.runDNSTest(rq, &d.Test); err != nil {
		status, fl := errFlash(err)
		var me *management.Error
		if errors.As(err, &me) && me.Kind == management.KindExhausted && me.RetryAfter > 0 {
			rq.w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(me.RetryAfter.Seconds()))))
		}
		h.render(rq, status, "dnstest", "DNS test", d, fl)
		return nil
	}
	h.render(rq, http.StatusOK, "dnstest", "DNS test", d)
	return nil
}

// runDNSTest asks the service to run the form's test.
func (h *Handler) runDNSTest(rq *req, t *dnsTest) error {
	visible := *rq.acct
	visible.Peers = visiblePeers(rq)
	p, err := findPeer(&visible, t.Peer)
	if err != nil {
		return badInput("peer: %s", err)
	}
	if ok, wait := h.dnsProbes.Allow(rq.sid); !ok {
		return &management.Error{Kind: management.KindExhausted, RetryAfter: wait,
			Msg: fmt.Sprintf("one DNS test at a time: retry in %s", wait.Round(100*time.Millisecond))}
	}
	res, err := h.svc.QueryDNS(rq.ctx(), rq.acct.ID, p.ID, t.Name, t.Type)
	if err != nil {
		return err
	}
	t.Ran, t.PeerName = true, display(p.Name)+" ("+p.IP.String()+")"
	t.Res = *res
	t.Res.Name, t.Res.Rcode, t.Res.Handler, t.Res.How, t.Res.Error = display(res.Name), display(res.Rcode), display(res.Handler), display(res.How), display(res.Error)
	t.Res.Records = make([]string, len(res.Records))
	for i, r := range res.Records {
		t.Res.Records[i] = display(r)
	}
	t.Took, t.RoundTrip = fmtDuration(res.Duration), fmtDuration(res.RoundTrip)
	return nil
}

func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
