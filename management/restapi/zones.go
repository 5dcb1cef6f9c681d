package restapi

import (
	"net/http"
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

// settingsRequest is the body of PUT /api/dns/settings.
type settingsRequest struct {
	DNSDomain *string `json:"dns_domain"`
}

// decodeSettings decodes a PUT /api/dns/settings body into new settings
// based on cur.
func decodeSettings(cur model.Settings, body []byte) (model.Settings, error) {
	var req settingsRequest
	if err := decodeJSON(body, &req); err != nil {
		return cur, err
	}
	if req.DNSDomain == nil {
		return cur, invalidf("dns_domain is required")
	}
	d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(*req.DNSDomain), "."))
	if d == "" {
		return cur, invalidf("dns_domain must not be empty")
	}
	cur.DNSDomain = d
	return cur, nil
}

func (s *server) pathZone(c *call) (*model.DNSZone, error) {
	a, err := s.snapshot(c)
	if err != nil {
		return nil, err
	}
	id := c.r.PathValue("id")
	z, ok := a.DNSZones[id]
	if !ok {
		return nil, notFoundf("zone %q not found", id)
	}
	return z, nil
}

func (s *server) listZones(c *call) (int, any, error) {
	a, err := s.snapshot(c)
	if err != nil {
		return 0, nil, err
	}
	out := make([]zoneView, 0, len(a.DNSZones))
	for _, z := range a.DNSZones {
		out = append(out, zoneViewOf(z))
	}
	sortByName(out, func(v zoneView) string { return v.Domain }, func(v zoneView) string { return v.ID })
	return http.StatusOK, out, nil
}

func (s *server) getZone(c *call) (int, any, error) {
	z, err := s.pathZone(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, zoneViewOf(z), nil
}

func (s *server) createZone(c *call) (int, any, error) { return s.putZone(c, false) }
func (s *server) updateZone(c *call) (int, any, error) { return s.putZone(c, true) }

func (s *server) putZone(c *call, update bool) (int, any, error) {
	body, err := readBody(c.w, c.r)
	if err != nil {
		return 0, nil, err
	}
	z, err := decodeZone(body)
	if err != nil {
		return 0, nil, err
	}
	status := http.StatusCreated
	if update {
		old, err := s.pathZone(c)
		if err != nil {
			return 0, nil, err
		}
		z.ID, status = old.ID, http.StatusOK
	}
	obj, err := s.api.Put(c.r.Context(), c.account, z)
	if err != nil {
		return 0, nil, err
	}
	stored, err := as[*model.DNSZone](obj)
	if err != nil {
		return 0, nil, err
	}
	return status, zoneViewOf(stored), nil
}

func (s *server) deleteZone(c *call) (int, any, error) {
	z, err := s.pathZone(c)
	if err != nil {
		return 0, nil, err
	}
	if err := s.api.Delete(c.r.Context(), c.account, model.KindDNSZone, z.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func (s *server) getDNSSettings(c *call) (int, any, error) {
	a, err := s.snapshot(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, accountViewOf(a).Settings, nil
}

func (s *server) updateDNSSettings(c *call) (int, any, error) {
	body, err := readBody(c.w, c.r)
	if err != nil {
		return 0, nil, err
	}
	a, err := s.snapshot(c)
	if err != nil {
		return 0, nil, err
	}
	set, err := decodeSettings(a.Settings, body)
	if err != nil {
		return 0, nil, err
	}
	if err := s.api.UpdateSettings(c.r.Context(), c.account, set); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, set, nil
}
