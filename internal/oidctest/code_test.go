package oidctest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const testRedirect = "http://127.0.0.1:1/callback" // never opened: AuthorizeCode returns it

type codeFlow struct {
	state, nonce, verifier string
}

// authURL builds an authorization request of the web client; an empty
// verifier leaves PKCE out.
func (f codeFlow) authURL(p *Provider, redirect string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {p.WebClientID()}, "redirect_uri": {redirect},
		"scope": {"openid email profile " + p.GroupsScope()}, "state": {f.state}, "nonce": {f.nonce}}
	if f.verifier != "" {
		sum := sha256.Sum256([]byte(f.verifier))
		q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
		q.Set("code_challenge_method", "S256")
	}
	return p.Issuer() + "/authorize?" + q.Encode()
}

func newFlow() codeFlow {
	return codeFlow{state: randomString(16), nonce: randomString(16), verifier: randomString(32)}
}

// exchange redeems code at the token endpoint.
func exchange(t *testing.T, p *Provider, code, verifier, secret string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect},
		"client_id": {p.WebClientID()}}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	req, _ := http.NewRequest(http.MethodPost, discover(t, p).Token, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(p.WebClientID()), url.QueryEscape(secret))
	}
	resp, err := p.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, m
}

func callbackParams(t *testing.T, to string) url.Values {
	t.Helper()
	u, err := url.Parse(to)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(to, testRedirect+"?") {
		t.Fatalf("redirected to %q, want the client's redirect URI", to)
	}
	return u.Query()
}

// idTokenClaims decodes an ID token's payload (the signature is the
// verifier's business, tested in management/identity).
func idTokenClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("id token %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCodeFlowWithPKCE(t *testing.T) {
	for _, secret := range []string{"", "s3cret"} {
		name := "public"
		if secret != "" {
			name = "confidential"
		}
		t.Run(name, func(t *testing.T) {
			p := Start(t, Config{WebClientSecret: secret, Users: []User{
				{Subject: "u1", Email: "alice@example.com", EmailVerified: true, Name: "Alice", Groups: []string{"eng"}}}})
			p.AllowRedirect(testRedirect)
			f := newFlow()
			q := callbackParams(t, p.AuthorizeCode(t, f.authURL(p, testRedirect), "u1"))
			if q.Get("state") != f.state || q.Get("code") == "" {
				t.Fatalf("callback %v", q)
			}
			status, m := exchange(t, p, q.Get("code"), f.verifier, secret)
			if status != http.StatusOK {
				t.Fatalf("exchange: %d %v", status, m)
			}
			c := idTokenClaims(t, m["id_token"].(string))
			aud, _ := json.Marshal(c["aud"])
			if c["nonce"] != f.nonce || c["sub"] != "u1" || !strings.Contains(string(aud), `"`+p.WebClientID()+`"`) ||
				c["email"] != "alice@example.com" {
				t.Fatalf("claims %v", c)
			}
			// A code is good once.
			if status, m := exchange(t, p, q.Get("code"), f.verifier, secret); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
				t.Fatalf("replayed code: %d %v", status, m)
			}
		})
	}
}

func TestCodeFlowRefusals(t *testing.T) {
	p := Start(t, Config{WebClientSecret: "s3cret", Users: []User{{Subject: "u1", Email: "alice@example.com"}}})
	p.AllowRedirect(testRedirect)

	t.Run("no verifier", func(t *testing.T) {
		f := newFlow()
		q := callbackParams(t, p.AuthorizeCode(t, f.authURL(p, testRedirect), "u1"))
		if status, m := exchange(t, p, q.Get("code"), "", "s3cret"); status != http.StatusBadRequest || m["error"] != "invalid_request" {
			t.Fatalf("exchange without verifier: %d %v", status, m)
		}
		// The code is spent, even with the right verifier now.
		if status, m := exchange(t, p, q.Get("code"), f.verifier, "s3cret"); status != http.StatusBadRequest {
			t.Fatalf("second exchange: %d %v", status, m)
		}
	})
	t.Run("wrong verifier", func(t *testing.T) {
		f := newFlow()
		q := callbackParams(t, p.AuthorizeCode(t, f.authURL(p, testRedirect), "u1"))
		if status, m := exchange(t, p, q.Get("code"), randomString(32), "s3cret"); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Fatalf("exchange with a wrong verifier: %d %v", status, m)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		f := newFlow()
		q := callbackParams(t, p.AuthorizeCode(t, f.authURL(p, testRedirect), "u1"))
		if status, m := exchange(t, p, q.Get("code"), f.verifier, "nope"); status == http.StatusOK {
			t.Fatalf("exchange with a wrong secret: %d %v", status, m)
		}
	})
	t.Run("no PKCE", func(t *testing.T) {
		f := newFlow()
		f.verifier = ""
		q := callbackParams(t, p.DenyCode(t, f.authURL(p, testRedirect)))
		if q.Get("error") != "invalid_request" || q.Get("state") != f.state || q.Get("code") != "" {
			t.Fatalf("callback %v", q)
		}
	})
	t.Run("deny", func(t *testing.T) {
		f := newFlow()
		q := callbackParams(t, p.DenyCode(t, f.authURL(p, testRedirect)))
		if q.Get("error") != "access_denied" || q.Get("state") != f.state || q.Get("code") != "" {
			t.Fatalf("callback %v", q)
		}
	})
	t.Run("unregistered redirect", func(t *testing.T) {
		f := newFlow()
		if _, err := p.authorize(f.authURL(p, "http://127.0.0.1:2/callback"), "u1", p.Password(t, "u1"), "allow"); err == nil ||
			!strings.Contains(err.Error(), "400") {
			t.Fatalf("unregistered redirect URI: %v", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		f := newFlow()
		if _, err := p.authorize(f.authURL(p, testRedirect), "u1", "wrong", "allow"); err == nil ||
			!strings.Contains(err.Error(), "wrong username or password") {
			t.Fatalf("wrong password: %v", err)
		}
	})
}
