package restapi

import (
	"net/http"
	"strings"
	"time"

	"petrel/management"
	"petrel/management/model"
)

// setupKeyRequest is the body of POST /api/setup-keys.
type setupKeyRequest struct {
	Name       string   `json:"name"`
	Reusable   bool     `json:"reusable"`
	UsageLimit int      `json:"usage_limit"`
	ExpiresIn  duration `json:"expires_in"`
	AutoGroups []ref    `json:"auto_groups"`
	Ephemeral  bool     `json:"ephemeral"`
}

// setupKeyUpdateRequest is the body of PUT /api/setup-keys/{id}; revoking
// is the only change a key accepts.
type setupKeyUpdateRequest struct {
	Revoked *bool `json:"revoked"`
}

// decodeSetupKey decodes a create body and resolves its auto groups.
func decodeSetupKey(r resolver, body []byte) (management.SetupKeyInput, error) {
	var req setupKeyRequest
	if err := decodeJSON(body, &req); err != nil {
		return management.SetupKeyInput{}, err
	}
	if req.UsageLimit < 0 {
		return management.SetupKeyInput{}, invalidf("usage_limit must not be negative")
	}
	if !req.Reusable && req.UsageLimit > 1 {
		return management.SetupKeyInput{}, invalidf("usage_limit %d needs \"reusable\": true (a one-off key is used once)", req.UsageLimit)
	}
	groups, err := r.groupRefs("auto_groups", req.AutoGroups)
	if err != nil {
		return management.SetupKeyInput{}, err
	}
	return management.SetupKeyInput{
		Name: strings.TrimSpace(req.Name), Reusable: req.Reusable, UsageLimit: req.UsageLimit,
		ExpiresIn: time.Duration(req.ExpiresIn), AutoGroups: groups, Ephemeral: req.Ephemeral,
	}, nil
}

// decodeSetupKeyUpdate decodes a PUT /api/setup-keys/{id} body.
func decodeSetupKeyUpdate(body []byte) (setupKeyUpdateRequest, error) {
	var req setupKeyUpdateRequest
	if err := decodeJSON(body, &req); err != nil {
		return req, err
	}
	if req.Revoked == nil {
		return req, invalidf("\"revoked\" is required (only revoking a key is supported)")
	}
	return req, nil
}

// setupKeyResource serves /api/setup-keys; create (which returns the
// plain key once) and update (revoke only) are written out below.
var setupKeyResource = &resource[*model.SetupKey, setupKeyView]{
	what: "setup key",
	all:  func(a *model.Account) map[string]*model.SetupKey { return a.SetupKeys },
	viewer: func(s *server, r resolver) func(*model.SetupKey) setupKeyView {
		now := s.now()
		return func(k *model.SetupKey) setupKeyView { return r.setupKeyView(k, now) }
	},
	name: func(v setupKeyView) string { return v.Name },
	id:   func(v setupKeyView) string { return v.ID },
}

func (s *server) createSetupKey(c *call) (int, any, error) {
	body, err := readBody(c, mediaJSON)
	if err != nil {
		return 0, nil, err
	}
	r, err := s.resolver(c)
	if err != nil {
		return 0, nil, err
	}
	in, err := decodeSetupKey(r, body)
	if err != nil {
		return 0, nil, err
	}
	k, plain, err := s.api.CreateSetupKey(c.r.Context(), c.account, in)
	if err != nil {
		return 0, nil, err
	}
	v := r.setupKeyView(k, s.now())
	v.Key = plain
	return http.StatusCreated, v, nil
}

// setupKeyUpdater serves PUT and PATCH /api/setup-keys/{id}.
var setupKeyUpdater = updater{current: setupKeyResource.current, apply: (*server).applySetupKeyUpdate}

// setupKeyReadOnly: everything but revoked. Usage and validity change as
// agents use the key and time passes.
var setupKeyReadOnly = readOnly{
	fixed: []string{"id", "name", "key_prefix", "reusable", "usage_limit", "expires_at", "auto_groups", "ephemeral", "created_at"},
	live:  []string{"used_times", "last_used", "state", "valid"},
}

func (s *server) applySetupKeyUpdate(c *call, body []byte) (int, any, error) {
	r, k, err := setupKeyResource.lookup(s, c)
	if err != nil {
		return 0, nil, err
	}
	ed, err := setupKeyReadOnly.strip(body, r.setupKeyView(k, s.now()))
	if err != nil {
		return 0, nil, err
	}
	req, err := decodeSetupKeyUpdate(ed.body)
	if err != nil {
		return 0, nil, err
	}
	switch {
	case !*req.Revoked && k.Revoked:
		return 0, nil, invalidf("setup key %q is revoked; a revoked key cannot be restored, create a new one", k.ID)
	case *req.Revoked && !k.Revoked:
		if k, err = s.api.RevokeSetupKey(c.r.Context(), c.account, k.ID); err != nil {
			return 0, nil, err
		}
	}
	return http.StatusOK, r.setupKeyView(k, s.now()), nil
}
