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

func (s *server) pathSetupKey(c *call) (resolver, *model.SetupKey, error) {
	r, err := s.resolver(c)
	if err != nil {
		return r, nil, err
	}
	id := c.r.PathValue("id")
	k, ok := r.a.SetupKeys[id]
	if !ok {
		return r, nil, notFoundf("setup key %q not found", id)
	}
	return r, k, nil
}

func (s *server) listSetupKeys(c *call) (int, any, error) {
	r, err := s.resolver(c)
	if err != nil {
		return 0, nil, err
	}
	now := s.now()
	out := make([]setupKeyView, 0, len(r.a.SetupKeys))
	for _, k := range r.a.SetupKeys {
		out = append(out, r.setupKeyView(k, now))
	}
	sortByName(out, func(v setupKeyView) string { return v.Name }, func(v setupKeyView) string { return v.ID })
	return http.StatusOK, out, nil
}

func (s *server) getSetupKey(c *call) (int, any, error) {
	r, k, err := s.pathSetupKey(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, r.setupKeyView(k, s.now()), nil
}

func (s *server) createSetupKey(c *call) (int, any, error) {
	body, err := readBody(c.w, c.r)
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

func (s *server) updateSetupKey(c *call) (int, any, error) {
	body, err := readBody(c.w, c.r)
	if err != nil {
		return 0, nil, err
	}
	req, err := decodeSetupKeyUpdate(body)
	if err != nil {
		return 0, nil, err
	}
	r, k, err := s.pathSetupKey(c)
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

func (s *server) deleteSetupKey(c *call) (int, any, error) {
	_, k, err := s.pathSetupKey(c)
	if err != nil {
		return 0, nil, err
	}
	if err := s.api.Delete(c.r.Context(), c.account, model.KindSetupKey, k.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
