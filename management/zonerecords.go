package management

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/management/store"
)

// AddZoneRecord adds one record to a custom zone. The record is checked
// as Put checks a zone's records (name, type, value; a TTL of 0 becomes
// 300) and the zone's size; a record with the same name, type and value
// is refused (KindConflict). The change is made on the zone as it is when
// committed, so records added at the same time by other callers are kept.
// It returns the stored record.
func (s *Service) AddZoneRecord(ctx context.Context, accountID, zoneID string, rec model.DNSRecord) (model.DNSRecord, error) {
	var out model.DNSRecord
	err := s.mutate(ctx, accountID, "add zone record", func(cur *model.Account) (*mutation, error) {
		old := cur.DNSZones[zoneID]
		if old == nil {
			return nil, Errorf(KindNotFound, "zone %q not found", zoneID)
		}
		z := *old
		z.Records = append(slices.Clone(old.Records), rec)
		if err := validateZone(cur, &z); err != nil {
			return nil, err
		}
		added := z.Records[len(z.Records)-1]
		if i := slices.IndexFunc(z.Records[:len(z.Records)-1], func(r model.DNSRecord) bool { return sameRecord(r, added) }); i >= 0 {
			return nil, Errorf(KindConflict, "zone %s already has the record %s", z.Domain, recordText(z.Records[i]))
		}
		out = added
		return zoneRecordsChange(cur, &z, "record added: "+recordText(added)), nil
	})
	return out, err
}

// DeleteZoneRecord removes the record of a custom zone with the name,
// type and value of rec (the TTL is not compared; names, CNAME targets
// and addresses are compared as DNS compares them). A zone without such a
// record is left as it is (KindNotFound). The change is made on the zone
// as it is when committed. It returns the removed record.
func (s *Service) DeleteZoneRecord(ctx context.Context, accountID, zoneID string, rec model.DNSRecord) (model.DNSRecord, error) {
	var out model.DNSRecord
	err := s.mutate(ctx, accountID, "delete zone record", func(cur *model.Account) (*mutation, error) {
		old := cur.DNSZones[zoneID]
		if old == nil {
			return nil, Errorf(KindNotFound, "zone %q not found", zoneID)
		}
		want := normRecord(rec)
		i := slices.IndexFunc(old.Records, func(r model.DNSRecord) bool { return sameRecord(normRecord(r), want) })
		if i < 0 {
			return nil, Errorf(KindNotFound, "zone %s has no record %q %q %q", old.Domain, want.Name, want.Type, want.Value)
		}
		z := *old
		// Not checked again: one record fewer cannot make the zone invalid,
		// and a record stored before a check existed can still go.
		z.Records = slices.Delete(slices.Clone(old.Records), i, i+1)
		out = old.Records[i]
		return zoneRecordsChange(cur, &z, "record deleted: "+recordText(out)), nil
	})
	return out, err
}

// zoneRecordsChange is the mutation that stores z, a changed copy of one
// of cur's zones.
func zoneRecordsChange(cur *model.Account, z *model.DNSZone, detail string) *mutation {
	next := cloneAccount(cur)
	next.DNSZones[z.ID] = z
	return &mutation{next: next, change: netmap.Change{Zones: []string{z.ID}},
		write: func(tx store.Tx) error { return tx.Put(cur.ID, z) },
		audit: &audit{action: string(model.KindDNSZone) + ".update", kind: model.KindDNSZone, id: z.ID, detail: detail}}
}

// normRecord is r with the name and type as validateZone stores them.
func normRecord(r model.DNSRecord) model.DNSRecord {
	r.Type = strings.ToUpper(strings.TrimSpace(r.Type))
	r.Name = strings.TrimSpace(r.Name)
	if r.Name == "" {
		r.Name = "@"
	}
	return r
}

// sameRecord reports whether two normalised records hold the same data:
// names compared without case (and a trailing dot), A and AAAA values as
// addresses, CNAME targets as domains, TXT values exactly. TTLs are not
// compared.
func sameRecord(a, b model.DNSRecord) bool {
	if a.Type != b.Type || !strings.EqualFold(strings.TrimSuffix(a.Name, "."), strings.TrimSuffix(b.Name, ".")) {
		return false
	}
	switch a.Type {
	case "A", "AAAA":
		x, errX := netip.ParseAddr(a.Value)
		y, errY := netip.ParseAddr(b.Value)
		if errX == nil && errY == nil {
			return x == y
		}
	case "CNAME":
		return normDomain(a.Value) == normDomain(b.Value)
	}
	return a.Value == b.Value
}

// recordText describes a stored (validated) record for errors and the
// audit log; a long value is shortened.
func recordText(r model.DNSRecord) string {
	v := r.Value
	if len(v) > 80 {
		cut := 80
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut] + "…"
	}
	return fmt.Sprintf("%s %s %q", r.Name, r.Type, v)
}
