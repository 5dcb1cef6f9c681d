package ui_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"petrel/management/model"
)

// TestRecordsAddedAtOnce: records added to one zone by several admins at
// the same moment are all kept — each add changes the zone as it is when
// the service commits, not a copy read when its request started — and a
// record deleted meanwhile by someone else is a 404 that changes nothing.
func TestRecordsAddedAtOnce(t *testing.T) {
	e := newEnv(t)
	o, err := e.svc.Put(e.ctx(), e.acct, &model.DNSZone{Domain: "corp.internal",
		Records: []model.DNSRecord{{Name: "www", Type: "A", Value: "10.1.2.3"}}})
	if err != nil {
		t.Fatal(err)
	}
	zone := o.ObjectID()
	const n = 12
	admins := make([]*browser, n)
	for i := range admins {
		admins[i] = e.browser()
		admins[i].signIn(e.admin)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, b := range admins {
		wg.Go(func() {
			form := url.Values{"name": {fmt.Sprintf("h%d", i)}, "type": {"A"}, "value": {fmt.Sprintf("10.0.0.%d", i+1)}}
			r, err := b.c.Post(e.srv.URL+"/ui/dns/zones/"+zone+"/records", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
			if err != nil {
				errs <- err
				return
			}
			r.Body.Close()
			if r.StatusCode != http.StatusSeeOther {
				errs <- fmt.Errorf("add h%d: status %d", i, r.StatusCode)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	recs := e.snapshot().DNSZones[zone].Records
	if len(recs) != n+1 {
		t.Fatalf("zone holds %d records, want %d: %+v", len(recs), n+1, recs)
	}

	// A duplicate is refused with the service's words.
	b := admins[0]
	b.post("/ui/dns/zones/"+zone+"/records", url.Values{"name": {"WWW"}, "type": {"A"}, "value": {"10.1.2.3"}}).
		want(t, 409, "already has the record")

	// The confirmation was shown for www; someone else deletes it; the
	// confirmed delete then finds nothing and changes nothing.
	body := b.get("/ui/dns").body
	sum := sumOf(t, body, 0)
	b.post("/ui/dns/zones/"+zone+"/records/delete", url.Values{"index": {"0"}, "sum": {sum}}).want(t, 200, "www A 10.1.2.3")
	if _, err := e.svc.DeleteZoneRecord(e.ctx(), e.acct, zone, model.DNSRecord{Name: "www", Type: "A", Value: "10.1.2.3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddZoneRecord(e.ctx(), e.acct, zone, model.DNSRecord{Name: "late", Type: "A", Value: "10.9.9.9"}); err != nil {
		t.Fatal(err)
	}
	before := e.snapshot().DNSZones[zone]
	// The request's own copy of the zone (read as it starts) no longer
	// holds www at index 0: the digest check refuses.
	b.post("/ui/dns/zones/"+zone+"/records/delete", url.Values{"index": {"0"}, "sum": {sum}, "confirm": {"yes"}}).want(t, 404, "changed meanwhile")
	if after := e.snapshot().DNSZones[zone]; len(after.Records) != len(before.Records) {
		t.Fatalf("a refused delete changed the zone: %d records, want %d", len(after.Records), len(before.Records))
	}
}

// sumOf returns the digest of the i-th record delete form of a DNS page.
func sumOf(t *testing.T, body string, i int) string {
	t.Helper()
	const key = `name="sum" value="`
	for range i {
		j := strings.Index(body, key)
		if j < 0 {
			break
		}
		body = body[j+len(key):]
	}
	j := strings.Index(body, key)
	if j < 0 {
		t.Fatalf("no record delete form %d", i)
	}
	body = body[j+len(key):]
	return body[:strings.IndexByte(body, '"')]
}
