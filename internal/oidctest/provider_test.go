package oidctest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

func start(t *testing.T) *Provider {
	return Start(t, Config{Users: []User{
		{Subject: "u1", Email: "alice@example.com", EmailVerified: true, Name: "Alice", Groups: []string{"eng"}},
		{Subject: "u2", Email: "bob@example.com"},
	}})
}

func getJSON(t *testing.T, c *http.Client, u string, v any) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// postForm posts to an endpoint and decodes the JSON answer, whatever the
// status.
func postForm(t *testing.T, c *http.Client, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("POST %s: %s, body not JSON: %v", u, resp.Status, err)
	}
	return resp.StatusCode, m
}

type discovery struct {
	Issuer     string   `json:"issuer"`
	Device     string   `json:"device_authorization_endpoint"`
	Token      string   `json:"token_endpoint"`
	JWKS       string   `json:"jwks_uri"`
	GrantTypes []string `json:"grant_types_supported"`
	Algs       []string `json:"id_token_signing_alg_values_supported"`
}

func discover(t *testing.T, p *Provider) discovery {
	var d discovery
	getJSON(t, p.HTTPClient(), p.Issuer()+"/.well-known/openid-configuration", &d)
	return d
}

func TestDiscoveryOverHTTPS(t *testing.T) {
	p := start(t)
	if !strings.HasPrefix(p.Issuer(), "https://127.0.0.1:") {
		t.Fatalf("issuer %q", p.Issuer())
	}
	d := discover(t, p)
	if d.Issuer != p.Issuer() || d.Device == "" || d.Token == "" || d.JWKS == "" {
		t.Fatalf("discovery %+v", d)
	}
	if !slices.Contains(d.GrantTypes, "urn:ietf:params:oauth:grant-type:device_code") {
		t.Fatalf("device grant not announced: %v", d.GrantTypes)
	}
	if !slices.Equal(d.Algs, []string{"ES256"}) {
		t.Fatalf("algorithms %v", d.Algs)
	}
	// A client that does not trust the provider's CA cannot talk to it.
	if _, err := http.Get(p.Issuer() + "/.well-known/openid-configuration"); err == nil {
		t.Fatal("plain client trusted the test CA")
	}
}

func jwksIDs(t *testing.T, p *Provider) []string {
	var ks jose.JSONWebKeySet
	getJSON(t, p.HTTPClient(), discover(t, p).JWKS, &ks)
	var ids []string
	for _, k := range ks.Keys {
		if !k.Valid() || !k.IsPublic() || k.Use != "sig" {
			t.Fatalf("JWKS key %q: valid %v public %v use %q", k.KeyID, k.Valid(), k.IsPublic(), k.Use)
		}
		ids = append(ids, k.KeyID)
	}
	return ids
}

func TestKeyRotation(t *testing.T) {
	p := start(t)
	first := p.KeyID()
	if got := jwksIDs(t, p); !slices.Equal(got, []string{first}) {
		t.Fatalf("JWKS %v, want [%s]", got, first)
	}
	second := p.RotateKey(t)
	if second == first || p.KeyID() != second {
		t.Fatalf("rotate: %s → %s (current %s)", first, second, p.KeyID())
	}
	if got := jwksIDs(t, p); !slices.Equal(got, []string{second, first}) {
		t.Fatalf("JWKS during grace %v, want [%s %s]", got, second, first)
	}
	p.RetireOldKeys()
	if got := jwksIDs(t, p); !slices.Equal(got, []string{second}) {
		t.Fatalf("JWKS after retiring %v, want [%s]", got, second)
	}
}

// startDevice asks for a device code as the agent's client would.
func startDevice(t *testing.T, p *Provider) (deviceCode, userCode, verification string) {
	t.Helper()
	code, m := postForm(t, p.HTTPClient(), discover(t, p).Device, url.Values{
		"client_id": {p.ClientID()}, "scope": {"openid email groups"}})
	if code != http.StatusOK {
		t.Fatalf("device authorization: %d %v", code, m)
	}
	deviceCode, _ = m["device_code"].(string)
	userCode, _ = m["user_code"].(string)
	verification, _ = m["verification_uri"].(string)
	return
}

// poll asks the token endpoint once; it returns the OAuth error code or
// "" and the ID token.
func poll(t *testing.T, p *Provider, deviceCode string) (oauthErr, idToken string) {
	t.Helper()
	_, m := postForm(t, p.HTTPClient(), discover(t, p).Token, url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode}, "client_id": {p.ClientID()}})
	oauthErr, _ = m["error"].(string)
	idToken, _ = m["id_token"].(string)
	return
}

func TestApprovalPages(t *testing.T) {
	p := start(t)
	dc, uc, verification := startDevice(t, p)
	if verification != p.DeviceURL() {
		t.Fatalf("verification URI %q, want %q", verification, p.DeviceURL())
	}
	if e, _ := poll(t, p, dc); e != "authorization_pending" {
		t.Fatalf("first poll: %q", e)
	}

	// A wrong password, an unknown code and a forged consent form are
	// refused on the page and change nothing.
	if err := p.approve(uc, "u1", "wrong", "allow"); err == nil || !strings.Contains(err.Error(), "wrong username or password") {
		t.Fatalf("wrong password: %v", err)
	}
	if err := p.approve("BCDF-GHJK", "u1", p.Password(t, "u1"), "allow"); err == nil || !strings.Contains(err.Error(), errUnknownCode.Error()) {
		t.Fatalf("unknown code: %v", err)
	}
	b, err := p.newBrowser()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.do(http.MethodPost, p.DeviceURL()+"/confirm", url.Values{"action": {"allow"}, "csrf": {"guess"}}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("consent without signing in: %v", err)
	}
	pg, err := b.get(p.DeviceURL() + "?user_code=" + url.QueryEscape(strings.ToLower(uc)))
	if err != nil {
		t.Fatal(err)
	}
	if pg, err = b.submit(pg, map[string]string{"username": "alice@example.com", "password": p.Password(t, "u1")}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.do(http.MethodPost, p.DeviceURL()+"/confirm", url.Values{"action": {"allow"}, "csrf": {"guess"}}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("consent with a forged csrf value: %v", err)
	}
	if e, _ := poll(t, p, dc); e != "authorization_pending" {
		t.Fatalf("poll after refused attempts: %q", e)
	}

	// The genuine consent form still works.
	if _, err := b.submit(pg, nil, "allow"); err != nil {
		t.Fatalf("consent after the forged posts: %v", err)
	}
	e, idt := poll(t, p, dc)
	if e != "" || strings.Count(idt, ".") != 2 {
		t.Fatalf("poll after approval: error %q, id token %d bytes", e, len(idt))
	}
	// The device code is used once.
	if e, idt := poll(t, p, dc); e != "access_denied" || idt != "" {
		t.Fatalf("second poll after approval: %q", e)
	}
	// And the user code cannot be approved again.
	if err := p.approve(uc, "u1", p.Password(t, "u1"), "allow"); err == nil {
		t.Fatal("approved a used code")
	}
}

func TestDenyExpireSlowDown(t *testing.T) {
	p := start(t)
	dc, uc, _ := startDevice(t, p)
	p.DenyDevice(t, uc, "u2")
	if e, _ := poll(t, p, dc); e != "access_denied" {
		t.Fatalf("after deny: %q", e)
	}

	dc, uc, _ = startDevice(t, p)
	p.ExpireDevice(t, uc)
	if e, _ := poll(t, p, dc); e != "expired_token" {
		t.Fatalf("after expiry: %q", e)
	}
	if err := p.approve(uc, "u1", p.Password(t, "u1"), "allow"); err == nil || !strings.Contains(err.Error(), errCodeExpired.Error()) {
		t.Fatalf("approving an expired code: %v", err)
	}

	dc, _, _ = startDevice(t, p)
	p.SlowDown(1)
	if e, _ := poll(t, p, dc); e != "slow_down" {
		t.Fatalf("slowed down: %q", e)
	}
	if e, _ := poll(t, p, dc); e != "authorization_pending" {
		t.Fatalf("after slow_down: %q", e)
	}
}

func TestUnknownClientRefused(t *testing.T) {
	p := start(t)
	code, m := postForm(t, p.HTTPClient(), discover(t, p).Device, url.Values{"client_id": {"someone-else"}, "scope": {"openid"}})
	if code == http.StatusOK || m["error"] != "invalid_client" {
		t.Fatalf("unknown client: %d %v", code, m)
	}
}

func TestMintedClaims(t *testing.T) {
	p := start(t)
	raw := p.Mint(t, Token{Nonce: "n1", Claims: map[string]any{"name": nil, "extra": "x"}})
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if jws.Signatures[0].Header.KeyID != p.KeyID() {
		t.Fatalf("kid %q, want %q", jws.Signatures[0].Header.KeyID, p.KeyID())
	}
	var c map[string]any
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
		t.Fatal(err)
	}
	if c["sub"] != "u1" || c["aud"] != p.ClientID() || c["iss"] != p.Issuer() || c["nonce"] != "n1" ||
		c["email"] != "alice@example.com" || c["extra"] != "x" || c["groups"] == nil {
		t.Fatalf("claims %v", c)
	}
	if _, ok := c["name"]; ok {
		t.Fatal("a nil claim was not removed")
	}
	none := p.Mint(t, Token{Signing: SignNone})
	if !strings.HasSuffix(none, ".") || strings.Count(none, ".") != 2 {
		t.Fatalf("unsigned token %q", none)
	}
}
