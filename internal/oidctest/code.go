package oidctest

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequest is one authorization request of the code flow: created by
// the OP's /authorize, completed on the login page (loginPath), turned
// into a code at /authorize/callback and exchanged once at the token
// endpoint. The OP gets copies (authRequestView), never the stored entry.
type authRequest struct {
	id            string
	clientID      string
	redirectURI   string
	state, nonce  string
	scopes        []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	codeChallenge *oidc.CodeChallenge
	expires       time.Time

	subject  string // set when the user signed in
	authTime time.Time
	done     bool
	code     string
	// redeemed: the code was presented once; any later use is refused
	// (RFC 6749 section 4.1.2), even if the first exchange failed.
	redeemed bool
}

// Errors of the login page.
var (
	errUnknownRequest = errors.New("unknown or finished sign-in request; start again at the application")
	errRequestExpired = errors.New("this sign-in request has expired; start again at the application")
)

// authRequestView is the copy of an authRequest handed to the OP.
type authRequestView struct{ a authRequest }

var _ op.AuthRequest = (*authRequestView)(nil)

func (v *authRequestView) GetID() string                         { return v.a.id }
func (v *authRequestView) GetACR() string                        { return "" }
func (v *authRequestView) GetAMR() []string                      { return []string{"pwd"} }
func (v *authRequestView) GetAudience() []string                 { return []string{v.a.clientID} }
func (v *authRequestView) GetAuthTime() time.Time                { return v.a.authTime }
func (v *authRequestView) GetClientID() string                   { return v.a.clientID }
func (v *authRequestView) GetCodeChallenge() *oidc.CodeChallenge { return v.a.codeChallenge }
func (v *authRequestView) GetNonce() string                      { return v.a.nonce }
func (v *authRequestView) GetRedirectURI() string                { return v.a.redirectURI }
func (v *authRequestView) GetResponseType() oidc.ResponseType    { return v.a.responseType }
func (v *authRequestView) GetResponseMode() oidc.ResponseMode    { return v.a.responseMode }
func (v *authRequestView) GetScopes() []string                   { return slices.Clone(v.a.scopes) }
func (v *authRequestView) GetState() string                      { return v.a.state }
func (v *authRequestView) GetSubject() string                    { return v.a.subject }
func (v *authRequestView) Done() bool                            { return v.a.done }

// view copies a; called with s.mu held.
func (a *authRequest) view() *authRequestView {
	cp := *a
	cp.scopes = slices.Clone(a.scopes)
	if a.codeChallenge != nil {
		cc := *a.codeChallenge
		cp.codeChallenge = &cc
	}
	return &authRequestView{a: cp}
}

// CreateAuthRequest stores a validated authorization request (the OP has
// checked the client, redirect URI, response type and scopes). This
// provider insists on PKCE with S256 for the code flow, as a strict
// provider may: a request without it is refused here and the OP sends
// the error to the redirect URI. Expired requests are swept first.
func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method S256 is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.ClientID != s.web.id {
		return nil, oidc.ErrInvalidClient().WithDescription("this client may not use the code flow")
	}
	now := time.Now()
	for id, a := range s.authReqs {
		if now.After(a.expires) {
			s.dropAuthRequest(id)
		}
	}
	a := &authRequest{
		id: randomString(16), clientID: req.ClientID, redirectURI: req.RedirectURI,
		state: req.State, nonce: req.Nonce, scopes: slices.Clone(req.Scopes),
		responseType: req.ResponseType, responseMode: req.ResponseMode,
		codeChallenge: &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod},
		expires:       now.Add(s.cfg.AuthRequestLifetime),
	}
	s.authReqs[a.id] = a
	return a.view(), nil
}

// dropAuthRequest forgets a request and its code; called with s.mu held.
func (s *storage) dropAuthRequest(id string) {
	if a, ok := s.authReqs[id]; ok {
		delete(s.codes, a.code)
		delete(s.authReqs, id)
	}
}

// liveAuthRequest returns the unexpired request with this ID; called with
// s.mu held.
func (s *storage) liveAuthRequest(id string) (*authRequest, error) {
	a, ok := s.authReqs[id]
	switch {
	case !ok:
		return nil, errUnknownRequest
	case time.Now().After(a.expires):
		return nil, errRequestExpired
	}
	return a, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.liveAuthRequest(id)
	if err != nil {
		return nil, err
	}
	return a.view(), nil
}

// AuthRequestByCode answers the token endpoint. A code is good for one
// exchange: the first lookup marks it redeemed, so a second one fails
// even when the first exchange was refused (a wrong code_verifier, say).
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.liveAuthRequest(s.codes[code])
	if err != nil {
		return nil, errors.New("oidctest: unknown or expired code")
	}
	if a.redeemed || !a.done {
		s.dropAuthRequest(a.id)
		return nil, errors.New("oidctest: code already used")
	}
	a.redeemed = true
	return a.view(), nil
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.liveAuthRequest(id)
	if err != nil {
		return err
	}
	if !a.done || a.code != "" {
		return errors.New("oidctest: the request has no sign-in or already has a code")
	}
	a.code = code
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropAuthRequest(id)
	return nil
}

// AuthorizeClientIDSecret authenticates the confidential web client.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	want := s.web.secret
	ok := id == s.web.id && want != ""
	s.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(secret)) != 1 {
		return oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	return nil
}

// completeLogin records the user's sign-in on a pending request and
// returns the request's ID; the OP then issues the code.
func (s *storage) completeLogin(id, subject string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.liveAuthRequest(id)
	if err != nil {
		return err
	}
	if a.done {
		return errors.New("this sign-in request was already completed")
	}
	if _, ok := s.users[subject]; !ok {
		return fmt.Errorf("oidctest: no user %q", subject)
	}
	a.done, a.subject, a.authTime = true, subject, time.Now()
	return nil
}

// takeAuthRequest removes a pending request (the user denied it) and
// returns a copy to address the error response.
func (s *storage) takeAuthRequest(id string) (*authRequestView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.liveAuthRequest(id)
	if err != nil {
		return nil, err
	}
	s.dropAuthRequest(id)
	return a.view(), nil
}

// requestClient names the client of a pending request, for the login page.
func (s *storage) requestClient(id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.liveAuthRequest(id)
	if err != nil {
		return "", err
	}
	return a.clientID, nil
}

func (s *storage) allowRedirect(uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.web.redirects, uri) {
		s.web.redirects = append(s.web.redirects, uri)
	}
}

// webClient is the second client: a web application (the dashboard) using
// the authorization-code flow with PKCE. With a secret it is confidential
// (client_secret_basic or client_secret_post), without one public (PKCE
// alone). Redirect URIs must match exactly; http ones are accepted (the
// OP allows them for the code flow of a web client), so tests can use
// plain loopback servers.
type webClient struct {
	id, secret  string
	redirects   []string
	idLifetime  time.Duration
	groupsScope string
}

var _ op.Client = (*webClient)(nil)

// snapshot copies c for the OP; called with s.mu held.
func (c *webClient) snapshot() *webClient {
	cp := *c
	cp.redirects = slices.Clone(c.redirects)
	return &cp
}

func (c *webClient) GetID() string                       { return c.id }
func (c *webClient) RedirectURIs() []string              { return c.redirects }
func (c *webClient) PostLogoutRedirectURIs() []string    { return nil }
func (c *webClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *webClient) AuthMethod() oidc.AuthMethod {
	if c.secret == "" {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
func (c *webClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *webClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode}
}
func (c *webClient) LoginURL(id string) string            { return loginPath + "?id=" + id }
func (c *webClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *webClient) IDTokenLifetime() time.Duration       { return c.idLifetime }
func (c *webClient) DevMode() bool                        { return false }
func (c *webClient) IsScopeAllowed(scope string) bool     { return scope == c.groupsScope }
func (c *webClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *webClient) ClockSkew() time.Duration             { return 0 }
func (c *webClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *webClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
