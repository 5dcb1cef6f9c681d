package restapi

import (
	"bytes"
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"petrel/management"
	"petrel/management/model"
)

// Personal access tokens act on this API with their user's role. The
// plain token is in the create response only; the store keeps a hash,
// which no response ever holds.

type tokenView struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	UserID    string     `json:"user_id"`
	Prefix    string     `json:"prefix"` // the token's first characters, to recognise it
	CreatedAt *time.Time `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"` // null: never
	Expired   bool       `json:"expired"`
	// Token is the secret, only in the create response.
	Token string `json:"token,omitempty"`
}

func tokenViewOf(t *model.AccessToken, now time.Time) tokenView {
	return tokenView{
		ID: t.ID, Name: t.Name, UserID: t.UserID, Prefix: t.Prefix, CreatedAt: optTime(t.CreatedAt),
		ExpiresAt: optTime(t.ExpiresAt), Expired: !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt),
	}
}

func (s *server) listTokens(c *call) (int, any, error) {
	r, u, err := s.pathUser(c)
	if err != nil {
		return 0, nil, err
	}
	now := s.now()
	out := []tokenView{}
	for _, t := range r.a.AccessTokens {
		if t.UserID == u.ID {
			out = append(out, tokenViewOf(t, now))
		}
	}
	slices.SortFunc(out, func(a, b tokenView) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return http.StatusOK, out, nil
}

// tokenRequest is the body of POST /api/users/{id}/tokens.
type tokenRequest struct {
	Name      string    `json:"name"`
	ExpiresIn expiresIn `json:"expires_in"` // omitted or 0: never
}

// expiresIn is a lifetime given as whole seconds (a JSON number) or as a
// duration string ("720h", "30d"), as setup keys take it.
type expiresIn time.Duration

func (d *expiresIn) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var v duration
		if err := v.UnmarshalJSON(b); err != nil {
			return err
		}
		*d = expiresIn(v)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return invalidf("expires_in must be whole seconds (e.g. 2592000) or a duration string such as \"720h\" or \"30d\", got %.40s", b)
	}
	if n < 0 || n > int64(maxExpiresIn/time.Second) {
		return invalidf("expires_in %d: want 0 (never) up to %d seconds (ten years)", n, int64(maxExpiresIn/time.Second))
	}
	*d = expiresIn(time.Duration(n) * time.Second)
	return nil
}

// decodeTokenRequest decodes and checks a POST /api/users/{id}/tokens body.
func decodeTokenRequest(body []byte) (management.AccessTokenInput, error) {
	var req tokenRequest
	if err := decodeJSON(body, &req); err != nil {
		return management.AccessTokenInput{}, err
	}
	name := strings.TrimSpace(req.Name)
	if name == "" {
		return management.AccessTokenInput{}, invalidf("name is required (to recognise the token when listing or revoking it)")
	}
	return management.AccessTokenInput{Name: name, ExpiresIn: time.Duration(req.ExpiresIn)}, nil
}

func (s *server) createToken(c *call) (int, any, error) {
	body, err := readBody(c, mediaJSON)
	if err != nil {
		return 0, nil, err
	}
	_, u, err := s.pathUser(c)
	if err != nil {
		return 0, nil, err
	}
	in, err := decodeTokenRequest(body)
	if err != nil {
		return 0, nil, err
	}
	// The service checks who may mint for whom (management.mayMintFor).
	t, plain, err := s.api.CreateAccessToken(c.r.Context(), c.account, u.ID, in)
	if err != nil {
		return 0, nil, err
	}
	v := tokenViewOf(t, s.now())
	v.Token = plain
	return http.StatusCreated, v, nil
}

func (s *server) revokeToken(c *call) (int, any, error) {
	_, u, err := s.pathUser(c)
	if err != nil {
		return 0, nil, err
	}
	if err := s.api.RevokeAccessToken(c.r.Context(), c.account, u.ID, c.r.PathValue("tokenId")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
