package management

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"petrel/management/internal/mgmttest"
	"petrel/management/model"
)

// zoneWith creates a zone holding recs and returns its ID.
func zoneWith(t *testing.T, s *Service, acct, domain string, recs ...model.DNSRecord) string {
	t.Helper()
	o, err := s.Put(mgmttest.Ctx(t), acct, &model.DNSZone{Domain: domain, Records: recs})
	if err != nil {
		t.Fatalf("put zone: %v", err)
	}
	return o.ObjectID()
}

func zoneRecords(t *testing.T, s *Service, acct, zone string) []model.DNSRecord {
	t.Helper()
	a, err := s.Snapshot(acct)
	if err != nil {
		t.Fatal(err)
	}
	return a.DNSZones[zone].Records
}

func zoneEvents(t *testing.T, s *Service, acct, zone string) []model.Event {
	t.Helper()
	ev, err := s.ListEvents(mgmttest.Ctx(t), acct, model.EventFilter{Action: "dns_zone.update", TargetID: zone})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestZoneRecordsConcurrent: records added and deleted by many callers at
// once are all applied — none is lost to a write computed from an older
// copy of the zone — and each is one audit event.
func TestZoneRecordsConcurrent(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct := onlyAccount(t, s)
	const n = 24
	var old []model.DNSRecord
	for i := range n {
		old = append(old, model.DNSRecord{Name: fmt.Sprintf("old%d", i), Type: "A", Value: fmt.Sprintf("10.0.1.%d", i), TTL: 60})
	}
	zone := zoneWith(t, s, acct, "corp.internal", old...)
	ctx := mgmttest.Ctx(t)

	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			rec := model.DNSRecord{Name: fmt.Sprintf("new%d", i), Type: "A", Value: fmt.Sprintf("10.0.2.%d", i)}
			if _, err := s.AddZoneRecord(ctx, acct, zone, rec); err != nil {
				errs <- fmt.Errorf("add %s: %w", rec.Name, err)
			}
		})
		wg.Go(func() {
			if _, err := s.DeleteZoneRecord(ctx, acct, zone, old[i]); err != nil {
				errs <- fmt.Errorf("delete %s: %w", old[i].Name, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := map[string]bool{}
	for _, r := range zoneRecords(t, s, acct, zone) {
		got[r.Name] = true
	}
	for i := range n {
		if name := fmt.Sprintf("new%d", i); !got[name] {
			t.Errorf("record %s was lost", name)
		}
		if name := fmt.Sprintf("old%d", i); got[name] {
			t.Errorf("deleted record %s is back", name)
		}
	}
	if len(got) != n {
		t.Errorf("zone holds %d records, want %d: %v", len(got), n, got)
	}
	if ev := zoneEvents(t, s, acct, zone); len(ev) != 2*n {
		t.Errorf("%d audit events, want %d", len(ev), 2*n)
	}
}

// TestAddZoneRecord: a record is stored as Put would store it, audited
// with what was added; refused records — Put's checks, duplicates, a full
// zone, an unknown zone — change nothing.
func TestAddZoneRecord(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct := onlyAccount(t, s)
	ctx := mgmttest.Ctx(t)
	zone := zoneWith(t, s, acct, "corp.internal",
		model.DNSRecord{Name: "www", Type: "A", Value: "10.1.2.3"},
		model.DNSRecord{Name: "v6", Type: "AAAA", Value: "fd00::1"},
		model.DNSRecord{Name: "alias", Type: "CNAME", Value: "www.corp.internal"},
		model.DNSRecord{Name: "@", Type: "TXT", Value: "v=1"})

	rec, err := s.AddZoneRecord(ctx, acct, zone, model.DNSRecord{Name: " db ", Type: "a", Value: "10.1.2.4"})
	if err != nil {
		t.Fatal(err)
	}
	want := model.DNSRecord{Name: "db", Type: "A", Value: "10.1.2.4", TTL: 300}
	if rec != want {
		t.Fatalf("returned %+v, want %+v", rec, want)
	}
	recs := zoneRecords(t, s, acct, zone)
	if len(recs) != 5 || recs[4] != want {
		t.Fatalf("records %+v", recs)
	}
	ev := zoneEvents(t, s, acct, zone)
	if len(ev) != 1 || ev[0].Detail != `record added: db A "10.1.2.4"` {
		t.Fatalf("events %+v", ev)
	}

	before, _ := s.Snapshot(acct)
	for _, c := range []struct {
		name string
		zone string
		rec  model.DNSRecord
		kind ErrorKind
		msg  string
	}{
		{"unknown zone", "nope", model.DNSRecord{Name: "x", Type: "A", Value: "10.0.0.1"}, KindNotFound, "not found"},
		{"bad type", zone, model.DNSRecord{Name: "x", Type: "MX", Value: "10 mail"}, KindInvalid, "unsupported type"},
		{"bad A", zone, model.DNSRecord{Name: "x", Type: "A", Value: "fd00::2"}, KindInvalid, "not an IPv4 address"},
		{"bad AAAA", zone, model.DNSRecord{Name: "x", Type: "AAAA", Value: "10.0.0.1"}, KindInvalid, "not an IPv6 address"},
		{"bad name", zone, model.DNSRecord{Name: "<img src=x onerror=alert(1)>", Type: "A", Value: "10.0.0.1"}, KindInvalid, "not a valid name"},
		{"bad CNAME", zone, model.DNSRecord{Name: "x", Type: "CNAME", Value: "not a domain"}, KindInvalid, "not a domain"},
		{"empty TXT", zone, model.DNSRecord{Name: "x", Type: "TXT"}, KindInvalid, "1-4000 characters"},
		{"duplicate", zone, model.DNSRecord{Name: "www", Type: "A", Value: "10.1.2.3"}, KindConflict, "already has"},
		{"duplicate other TTL and case", zone, model.DNSRecord{Name: "WWW.", Type: "a", Value: "10.1.2.3", TTL: 5}, KindConflict, "already has"},
		{"duplicate address spelt otherwise", zone, model.DNSRecord{Name: "v6", Type: "AAAA", Value: "FD00:0::1"}, KindConflict, "already has"},
		{"duplicate CNAME", zone, model.DNSRecord{Name: "alias", Type: "CNAME", Value: "WWW.corp.internal."}, KindConflict, "already has"},
		{"duplicate apex", zone, model.DNSRecord{Name: "", Type: "TXT", Value: "v=1"}, KindConflict, "already has"},
	} {
		_, err := s.AddZoneRecord(ctx, acct, c.zone, c.rec)
		wantKind(t, err, c.kind, c.name)
		if !strings.Contains(err.Error(), c.msg) {
			t.Fatalf("%s: error %q lacks %q", c.name, err, c.msg)
		}
	}
	// Not duplicates: another value, or another type, for the same name.
	for _, r := range []model.DNSRecord{{Name: "www", Type: "A", Value: "10.1.2.5"}, {Name: "www", Type: "TXT", Value: "10.1.2.3"}} {
		if _, err := s.AddZoneRecord(ctx, acct, zone, r); err != nil {
			t.Fatalf("add %+v: %v", r, err)
		}
		if _, err := s.DeleteZoneRecord(ctx, acct, zone, r); err != nil {
			t.Fatalf("delete %+v: %v", r, err)
		}
	}
	if after, _ := s.Snapshot(acct); !reflect.DeepEqual(before.DNSZones, after.DNSZones) {
		t.Fatal("refused records changed the zone")
	}
	if ev := zoneEvents(t, s, acct, zone); len(ev) != 1+4 {
		t.Fatalf("%d events after refusals, want 5", len(ev))
	}

	// A full zone takes no more.
	var full []model.DNSRecord
	for i := range MaxRecordsPerZone {
		full = append(full, model.DNSRecord{Name: fmt.Sprintf("h%d", i), Type: "A", Value: "10.9.0.1"})
	}
	big := zoneWith(t, s, acct, "big.internal", full...)
	_, err = s.AddZoneRecord(ctx, acct, big, model.DNSRecord{Name: "one-more", Type: "A", Value: "10.9.0.2"})
	wantKind(t, err, KindInvalid, "full zone")
	if n := len(zoneRecords(t, s, acct, big)); n != MaxRecordsPerZone {
		t.Fatalf("full zone has %d records", n)
	}
}

// TestDeleteZoneRecord: the record with that data goes, whatever its
// position; a record the zone does not hold is a not-found error that
// changes nothing.
func TestDeleteZoneRecord(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct := onlyAccount(t, s)
	ctx := mgmttest.Ctx(t)
	zone := zoneWith(t, s, acct, "corp.internal",
		model.DNSRecord{Name: "www", Type: "A", Value: "10.1.2.3", TTL: 60},
		model.DNSRecord{Name: "db", Type: "A", Value: "10.1.2.4"},
		model.DNSRecord{Name: "@", Type: "TXT", Value: "v=1"})

	before, _ := s.Snapshot(acct)
	for _, c := range []struct {
		name string
		zone string
		rec  model.DNSRecord
	}{
		{"unknown zone", "nope", model.DNSRecord{Name: "www", Type: "A", Value: "10.1.2.3"}},
		{"other value", zone, model.DNSRecord{Name: "www", Type: "A", Value: "10.1.2.9"}},
		{"other type", zone, model.DNSRecord{Name: "www", Type: "TXT", Value: "10.1.2.3"}},
		{"other name", zone, model.DNSRecord{Name: "web", Type: "A", Value: "10.1.2.3"}},
		{"empty", zone, model.DNSRecord{}},
	} {
		_, err := s.DeleteZoneRecord(ctx, acct, c.zone, c.rec)
		wantKind(t, err, KindNotFound, c.name)
	}
	if after, _ := s.Snapshot(acct); !reflect.DeepEqual(before.DNSZones, after.DNSZones) {
		t.Fatal("a refused delete changed the zone")
	}
	if ev := zoneEvents(t, s, acct, zone); len(ev) != 0 {
		t.Fatalf("refused deletes were audited: %+v", ev)
	}

	// Matched as DNS compares: name case, trailing dot; the TTL is not
	// compared.
	got, err := s.DeleteZoneRecord(ctx, acct, zone, model.DNSRecord{Name: "DB.", Type: "a", Value: "10.1.2.4", TTL: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "db" || got.TTL != 300 {
		t.Fatalf("returned %+v", got)
	}
	recs := zoneRecords(t, s, acct, zone)
	if len(recs) != 2 || recs[0].Name != "www" || recs[1].Name != "@" {
		t.Fatalf("records %+v", recs)
	}
	ev := zoneEvents(t, s, acct, zone)
	if len(ev) != 1 || ev[0].Detail != `record deleted: db A "10.1.2.4"` {
		t.Fatalf("events %+v", ev)
	}
	_, err = s.DeleteZoneRecord(ctx, acct, zone, model.DNSRecord{Name: "db", Type: "A", Value: "10.1.2.4"})
	wantKind(t, err, KindNotFound, "deleted twice")
}
