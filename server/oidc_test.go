package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"petrel/management/identity"
)

func TestOIDCValidate(t *testing.T) {
	cases := []struct {
		name string
		o    OIDC
		want string // "" = valid
	}{
		{"off", OIDC{}, ""},
		{"valid", OIDC{Issuer: "https://login.example.com", ClientID: "petrel"}, ""},
		{"loopback http", OIDC{Issuer: "http://127.0.0.1:5556/dex", ClientID: "petrel"}, ""},
		{"client without issuer", OIDC{ClientID: "petrel"}, "set --oidc-issuer"},
		{"no client id", OIDC{Issuer: "https://login.example.com"}, "--oidc-client-id is required"},
		{"plain http", OIDC{Issuer: "http://login.example.com", ClientID: "p"}, "must use https"},
		{"not a url", OIDC{Issuer: "login.example.com", ClientID: "p"}, "want https://"},
		{"query", OIDC{Issuer: "https://login.example.com/?x=1", ClientID: "p"}, "no query"},
		{"bad scope", OIDC{Issuer: "https://l.example", ClientID: "p", Scopes: []string{"openid email"}}, "not a scope"},
		{"bad domain", OIDC{Issuer: "https://l.example", ClientID: "p", EmailDomains: []string{"a@b"}}, "not a domain"},
		{"bad owner", OIDC{Issuer: "https://l.example", ClientID: "p", OwnerEmails: []string{"admin"}}, "not an email"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := c.o.validate()
			if c.want == "" {
				if len(errs) > 0 {
					t.Fatalf("errors %v, want none", errs)
				}
				return
			}
			if len(errs) == 0 || !strings.Contains(errors.Join(errs...).Error(), c.want) {
				t.Fatalf("errors %v, want one saying %q", errs, c.want)
			}
		})
	}
	if (OIDC{}).identityConfig() != nil {
		t.Fatal("identity config without an issuer")
	}
}

// TestLazyVerifierProviderDown: a provider that cannot be reached makes
// sign-ins fail as unavailable (not as a bad token), and is not asked
// again on every call.
func TestLazyVerifierProviderDown(t *testing.T) {
	ic := OIDC{Issuer: "http://127.0.0.1:1", ClientID: "petrel"}.identityConfig()
	_, err := ic.Verifier.Verify(context.Background(), "x.y.z")
	if !errors.Is(err, identity.ErrUnavailable) {
		t.Fatalf("Verify with the provider down: %v, want ErrUnavailable", err)
	}
	lv := ic.Verifier.(*lazyVerifier)
	first := lv.lastTry
	if _, err := ic.Verifier.Verify(context.Background(), "a.b.c"); !errors.Is(err, identity.ErrUnavailable) {
		t.Fatalf("second Verify: %v", err)
	}
	if !lv.lastTry.Equal(first) {
		t.Fatal("discovery retried at once")
	}
}
