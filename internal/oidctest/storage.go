package oidctest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// errUnsupported answers the parts of op.Storage for flows this provider
// does not offer (refresh, client credentials, JWT profile,
// introspection).
var errUnsupported = errors.New("oidctest: not offered by this provider")

// storage is the in-memory op.Storage (plus op.DeviceAuthorizationStorage
// and op.CanSetUserinfoFromRequest, in device.go and below; the code
// flow's auth requests are in code.go).
type storage struct {
	cfg    *Config
	keys   *keyring
	client *agentClient

	mu        sync.Mutex
	users     map[string]User // by subject
	tokens    map[string]accessToken
	devices   map[string]*deviceEntry // by device code
	userCodes map[string]string       // user code → device code
	sessions  map[string]*session     // approval-page sign-ins, by cookie
	slowDowns int                     // polls still to answer slow_down
	web       *webClient              // the code-flow client (its redirect URIs change)
	authReqs  map[string]*authRequest // by ID
	codes     map[string]string       // authorization code → auth request ID
}

type accessToken struct {
	subject string
	scopes  []string
	expires time.Time
}

var (
	_ op.Storage                    = (*storage)(nil)
	_ op.DeviceAuthorizationStorage = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest  = (*storage)(nil)
)

func newStorage(cfg *Config, keys *keyring) (*storage, error) {
	s := &storage{
		cfg: cfg, keys: keys,
		client: &agentClient{id: cfg.ClientID, idLifetime: cfg.IDTokenLifetime, groupsScope: cfg.GroupsScope},
		users:  map[string]User{}, tokens: map[string]accessToken{},
		devices: map[string]*deviceEntry{}, userCodes: map[string]string{}, sessions: map[string]*session{},
		web: &webClient{id: cfg.WebClientID, secret: cfg.WebClientSecret, redirects: slices.Clone(cfg.WebRedirectURIs),
			idLifetime: cfg.IDTokenLifetime, groupsScope: cfg.GroupsScope},
		authReqs: map[string]*authRequest{}, codes: map[string]string{},
	}
	if cfg.WebClientID == cfg.ClientID {
		return nil, errors.New("oidctest: the web client needs an ID of its own")
	}
	for _, u := range cfg.Users {
		if u.Subject == "" {
			return nil, errors.New("oidctest: a user has no subject")
		}
		if _, dup := s.users[u.Subject]; dup {
			return nil, fmt.Errorf("oidctest: user %q twice", u.Subject)
		}
		if u.Password == "" {
			u.Password = randomString(12)
		}
		u.Groups = slices.Clone(u.Groups)
		s.users[u.Subject] = u
	}
	return s, nil
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

func (s *storage) setGroups(subject string, groups []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[subject]
	if !ok {
		return fmt.Errorf("oidctest: no user %q", subject)
	}
	u.Groups = slices.Clone(groups)
	s.users[subject] = u
	return nil
}

func (s *storage) password(subject string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[subject]
	return u.Password, ok
}

// lookupUser finds a user by subject or email. Called with s.mu held.
func (s *storage) lookupUser(name string) (User, bool) {
	if u, ok := s.users[name]; ok {
		return u, true
	}
	for _, u := range s.users {
		if u.Email != "" && u.Email == name {
			return u, true
		}
	}
	return User{}, false
}

// fillUserinfo sets the claims the scopes ask for. Called with s.mu held.
func (s *storage) fillUserinfo(info *oidc.UserInfo, subject string, scopes []string) error {
	u, ok := s.users[subject]
	if !ok {
		return fmt.Errorf("oidctest: no user %q", subject)
	}
	info.Subject = u.Subject
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeEmail:
			info.Email = u.Email
			info.EmailVerified = oidc.Bool(u.EmailVerified)
		case oidc.ScopeProfile:
			info.Name = u.Name
		case s.cfg.GroupsScope:
			info.AppendClaims(s.cfg.GroupsClaim, append([]string{}, u.Groups...))
		}
	}
	return nil
}

// SetUserinfoFromRequest fills the ID token's user claims.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fillUserinfo(info, req.GetSubject(), scopes)
}

// SetUserinfoFromScopes is deprecated in the OP; SetUserinfoFromRequest
// does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromToken answers the userinfo endpoint.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tokenID]
	if !ok || time.Now().After(t.expires) {
		return errors.New("oidctest: access token unknown or expired")
	}
	return s.fillUserinfo(info, t.subject, t.scopes)
}

// CreateAccessToken records an opaque access token (the OP encrypts its ID).
func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	id := randomString(16)
	exp := time.Now().Add(s.cfg.AccessTokenLifetime)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[id] = accessToken{subject: req.GetSubject(), scopes: slices.Clone(req.GetScopes()), expires: exp}
	return id, exp, nil
}

// RevokeToken forgets an access token.
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, _ string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, tokenOrID)
	return nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.keys.signing(), nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{s.keys.algorithm()}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) { return s.keys.keySet(), nil }

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	switch id {
	case s.client.id:
		return s.client, nil
	case s.web.id:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.web.snapshot(), nil
	}
	return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }
func (s *storage) Health(context.Context) error                           { return nil }

// The flows below are not offered: the agent's client uses the device
// grant, the web client the authorization code (code.go); neither gets
// refresh tokens.

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errUnsupported
}
func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}
func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}
func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errUnsupported
}
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errUnsupported
}
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errUnsupported
}

// agentClient is the agent's public native client: device grant, no
// secret, opaque access tokens, user claims in the ID token.
type agentClient struct {
	id          string
	idLifetime  time.Duration
	groupsScope string
}

var _ op.Client = (*agentClient)(nil)

func (c *agentClient) GetID() string                       { return c.id }
func (c *agentClient) RedirectURIs() []string              { return nil }
func (c *agentClient) PostLogoutRedirectURIs() []string    { return nil }
func (c *agentClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeNative }
func (c *agentClient) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodNone }
func (c *agentClient) ResponseTypes() []oidc.ResponseType  { return nil }
func (c *agentClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeDeviceCode}
}
func (c *agentClient) LoginURL(string) string               { return "" }
func (c *agentClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *agentClient) IDTokenLifetime() time.Duration       { return c.idLifetime }
func (c *agentClient) DevMode() bool                        { return false }
func (c *agentClient) IsScopeAllowed(scope string) bool     { return scope == c.groupsScope }
func (c *agentClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *agentClient) ClockSkew() time.Duration             { return 0 }
func (c *agentClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *agentClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
