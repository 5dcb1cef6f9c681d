package restapi

import (
	"net/http"
	"strings"
	"time"

	"petrel/management/model"
)

// settingsView is the account settings as /api/settings and the account
// view show them.
type settingsView struct {
	DNSDomain string `json:"dns_domain"`
	// LoginExpirationSeconds: how long a user's peer stays logged in after
	// the user last signed in from it; 0 is never.
	LoginExpirationSeconds int64 `json:"login_expiration_seconds"`
}

// dnsSettingsView is /api/dns/settings: the DNS part of the settings.
type dnsSettingsView struct {
	DNSDomain string `json:"dns_domain"`
}

func settingsViewOf(set model.Settings) settingsView {
	d := set.DNSDomain
	if d == "" {
		d = model.DefaultDNSDomain
	}
	return settingsView{DNSDomain: d, LoginExpirationSeconds: int64(set.LoginExpiration / time.Second)}
}

// settingsRequest is the body of PUT /api/settings; an omitted member
// keeps its value.
type settingsRequest struct {
	DNSDomain              *string `json:"dns_domain"`
	LoginExpirationSeconds *int64  `json:"login_expiration_seconds"`
}

// dnsSettingsRequest is the body of PUT /api/dns/settings.
type dnsSettingsRequest struct {
	DNSDomain *string `json:"dns_domain"`
}

// maxLoginExpiration bounds login_expiration_seconds before it is turned
// into a duration (the service allows at most ten years too).
const maxLoginExpiration = 10 * 365 * 24 * time.Hour

// decodeSettings decodes a PUT /api/settings body into new settings
// based on cur (members not given keep their value). The service checks
// the values.
func decodeSettings(cur model.Settings, body []byte) (model.Settings, error) {
	var req settingsRequest
	if err := decodeJSON(body, &req); err != nil {
		return cur, err
	}
	if req.DNSDomain == nil && req.LoginExpirationSeconds == nil {
		return cur, invalidf("nothing to update: give \"dns_domain\" and/or \"login_expiration_seconds\"")
	}
	if req.DNSDomain != nil {
		d, err := normDomain(*req.DNSDomain)
		if err != nil {
			return cur, err
		}
		cur.DNSDomain = d
	}
	if n := req.LoginExpirationSeconds; n != nil {
		if *n < 0 || *n > int64(maxLoginExpiration/time.Second) {
			return cur, invalidf("login_expiration_seconds %d: want 0 (never) or between 60 and %d (ten years)", *n, int64(maxLoginExpiration/time.Second))
		}
		cur.LoginExpiration = time.Duration(*n) * time.Second
	}
	return cur, nil
}

// decodeDNSSettings decodes a PUT /api/dns/settings body: only the DNS
// domain changes, the other settings keep their value.
func decodeDNSSettings(cur model.Settings, body []byte) (model.Settings, error) {
	var req dnsSettingsRequest
	if err := decodeJSON(body, &req); err != nil {
		return cur, err
	}
	if req.DNSDomain == nil {
		return cur, invalidf("dns_domain is required")
	}
	d, err := normDomain(*req.DNSDomain)
	if err != nil {
		return cur, err
	}
	cur.DNSDomain = d
	return cur, nil
}

func normDomain(s string) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
	if d == "" {
		return "", invalidf("dns_domain must not be empty")
	}
	return d, nil
}

func (s *server) getSettings(c *call) (int, any, error) {
	a, err := s.snapshot(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, settingsViewOf(a.Settings), nil
}

func (s *server) getDNSSettings(c *call) (int, any, error) {
	a, err := s.snapshot(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, dnsSettingsView{DNSDomain: settingsViewOf(a.Settings).DNSDomain}, nil
}

// settingsUpdater serves PUT and PATCH /api/settings.
var settingsUpdater = updater{
	current: func(s *server, c *call) (any, error) {
		_, v, err := s.getSettings(c)
		return v, err
	},
	apply: func(s *server, c *call, body []byte) (int, any, error) {
		set, err := s.applySettings(c, body, decodeSettings)
		return http.StatusOK, settingsViewOf(set), err
	},
}

// dnsSettingsUpdater serves PUT and PATCH /api/dns/settings.
var dnsSettingsUpdater = updater{
	current: func(s *server, c *call) (any, error) {
		_, v, err := s.getDNSSettings(c)
		return v, err
	},
	apply: func(s *server, c *call, body []byte) (int, any, error) {
		set, err := s.applySettings(c, body, decodeDNSSettings)
		return http.StatusOK, dnsSettingsView{DNSDomain: settingsViewOf(set).DNSDomain}, err
	},
}

// applySettings decodes body over the current settings and stores them.
func (s *server) applySettings(c *call, body []byte, decode func(model.Settings, []byte) (model.Settings, error)) (model.Settings, error) {
	a, err := s.snapshot(c)
	if err != nil {
		return model.Settings{}, err
	}
	set, err := decode(a.Settings, body)
	if err != nil {
		return set, err
	}
	if set.DNSDomain == "" { // an account stored before the default was set
		set.DNSDomain = model.DefaultDNSDomain
	}
	return set, s.api.UpdateSettings(c.r.Context(), c.account, set)
}
