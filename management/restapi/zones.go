package restapi

import (
	"strings"

	"petrel/management/model"
)

// zoneRequest is the body of POST/PUT /api/dns/zones.
type zoneRequest struct {
	Domain  string            `json:"domain"`
	Records []model.DNSRecord `json:"records"`
}

// decodeZone decodes a custom zone body. Record content is checked by the
// service.
func decodeZone(body []byte) (*model.DNSZone, error) {
	var req zoneRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	z := &model.DNSZone{Domain: strings.ToLower(strings.TrimSuffix(strings.TrimSpace(req.Domain), "."))}
	if z.Domain == "" {
		return nil, invalidf("domain is required")
	}
	for i, rec := range req.Records {
		rec.Type = strings.ToUpper(strings.TrimSpace(rec.Type))
		switch rec.Type {
		case "A", "AAAA", "CNAME", "TXT":
		default:
			return nil, invalidf("records[%d]: type %q not supported (A, AAAA, CNAME, TXT)", i, rec.Type)
		}
		rec.Name = strings.TrimSpace(rec.Name)
		if rec.Name == "" {
			rec.Name = "@"
		}
		z.Records = append(z.Records, rec)
	}
	return z, nil
}

// zoneResource serves /api/dns/zones. Zones reference nothing, so create
// reads no snapshot.
var zoneResource = &resource[*model.DNSZone, zoneView]{
	all:      func(a *model.Account) map[string]*model.DNSZone { return a.DNSZones },
	what:     "zone",
	decode:   func(_ resolver, body []byte) (*model.DNSZone, error) { return decodeZone(body) },
	plain:    true,
	setID:    func(z *model.DNSZone, id string) { z.ID = id },
	readOnly: readOnly{fixed: []string{"id"}},
	viewer:   func(*server, resolver) func(*model.DNSZone) zoneView { return zoneViewOf },
	name:     func(v zoneView) string { return v.Domain },
	id:       func(v zoneView) string { return v.ID },
}
