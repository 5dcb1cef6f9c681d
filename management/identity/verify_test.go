package identity

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"petrel/internal/oidctest"
)

func TestDeviceFlowEndToEnd(t *testing.T) {
	for _, rsa := range []bool{false, true} {
		name := "ES256"
		if rsa {
			name = "RS256"
		}
		t.Run(name, func(t *testing.T) {
			const lifetime = 37 * time.Minute
			p, v, _ := setup(t, oidctest.Config{RSA: rsa, IDTokenLifetime: lifetime}, nil)
			before := time.Now().Truncate(time.Second)
			tok := deviceLogin(t, p, "u1")
			after := time.Now()
			id, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			want := Identity{Issuer: p.Issuer(), Subject: "u1", Email: "alice@example.com", EmailVerified: true,
				Name: "Alice", Groups: []string{"eng", "ops"}, Expiry: id.Expiry}
			if !equalIdentity(*id, want) {
				t.Fatalf("identity %+v, want %+v", *id, want)
			}
			if id.Expiry.Before(before.Add(lifetime)) || id.Expiry.After(after.Add(lifetime)) {
				t.Fatalf("expiry %v, want %v after the login", id.Expiry, lifetime)
			}
		})
	}
}

func equalIdentity(a, b Identity) bool {
	return a.Issuer == b.Issuer && a.Subject == b.Subject && a.Email == b.Email && a.EmailVerified == b.EmailVerified &&
		a.Name == b.Name && slices.Equal(a.Groups, b.Groups) && (a.Groups == nil) == (b.Groups == nil) && a.Expiry.Equal(b.Expiry)
}

func TestGroupChangeShowsOnNextLogin(t *testing.T) {
	p, v, _ := setup(t, oidctest.Config{}, nil)
	ctx := context.Background()
	before := deviceLogin(t, p, "u1")
	p.SetGroups(t, "u1", []string{"sre", "eng", "sre"})
	after := deviceLogin(t, p, "u1")
	p.SetGroups(t, "u1", nil)
	none := deviceLogin(t, p, "u1")
	for _, c := range []struct {
		tok  string
		want []string
	}{{before, []string{"eng", "ops"}}, {after, []string{"eng", "sre"}}, {none, []string{}}} {
		id, err := v.Verify(ctx, c.tok)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(id.Groups, c.want) || id.Groups == nil {
			t.Fatalf("groups %#v, want %#v", id.Groups, c.want)
		}
	}
}

func TestGroupsNotReadWhenNotConfigured(t *testing.T) {
	p, v, _ := setup(t, oidctest.Config{}, func(c *Config) { c.GroupsClaim = "" })
	// The groups scope was not requested, so the claim is absent: fine
	// when the server does not sync groups.
	id, err := v.Verify(context.Background(), deviceLogin(t, p, "u1", "email"))
	if err != nil {
		t.Fatal(err)
	}
	if id.Groups != nil || id.Email != "alice@example.com" || id.Name != "" {
		t.Fatalf("identity %+v", *id)
	}
}

func TestGroupsClaimMissingFromRealToken(t *testing.T) {
	// Syncing groups but the agent did not ask for the groups scope: the
	// claim is missing and the login is refused, instead of emptying the
	// user's groups.
	p, v, _ := setup(t, oidctest.Config{}, nil)
	_, err := v.Verify(context.Background(), deviceLogin(t, p, "u1", "email"))
	if !errors.Is(err, ErrClaims) || !strings.Contains(err.Error(), `no "groups" claim`) {
		t.Fatalf("got %v", err)
	}
}

func TestCustomGroupsClaim(t *testing.T) {
	p, v, _ := setup(t, oidctest.Config{GroupsClaim: "roles", GroupsScope: "roles"}, func(c *Config) { c.GroupsClaim = "roles" })
	id, err := v.Verify(context.Background(), deviceLogin(t, p, "u1"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(id.Groups, []string{"eng", "ops"}) {
		t.Fatalf("groups %v", id.Groups)
	}
}

func TestAllowedEmailDomains(t *testing.T) {
	p, v, _ := setup(t, oidctest.Config{}, func(c *Config) { c.AllowedEmailDomains = []string{" Example.COM ", "@corp.example"} })
	ctx := context.Background()
	if _, err := v.Verify(ctx, deviceLogin(t, p, "u1")); err != nil {
		t.Fatalf("verified email in an allowed domain: %v", err)
	}
	cases := []struct {
		name  string
		tok   oidctest.Token
		want  error
		which string
	}{
		{"upper case", oidctest.Token{Claims: map[string]any{"email": "ALICE@EXAMPLE.COM"}}, nil, ""},
		{"second domain", oidctest.Token{Claims: map[string]any{"email": "carol@corp.example"}}, nil, ""},
		{"verified as string", oidctest.Token{Claims: map[string]any{"email_verified": "true"}}, nil, ""},
		{"other domain", oidctest.Token{Subject: "u3"}, ErrDomain, `"evil.example" is not one of`},
		{"subdomain", oidctest.Token{Claims: map[string]any{"email": "alice@eu.example.com"}}, ErrDomain, "is not one of"},
		{"look-alike suffix", oidctest.Token{Claims: map[string]any{"email": "alice@badexample.com"}}, ErrDomain, "is not one of"},
		{"unverified", oidctest.Token{Subject: "u2"}, ErrDomain, "not verified"},
		{"no email", oidctest.Token{Claims: map[string]any{"email": nil}}, ErrDomain, "no email"},
		{"not an address", oidctest.Token{Claims: map[string]any{"email": "example.com"}}, ErrClaims, "not a usable address"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(ctx, p.Mint(t, c.tok))
			if !errors.Is(err, c.want) || (err != nil && !strings.Contains(err.Error(), c.which)) {
				t.Fatalf("got %v, want %v (%s)", err, c.want, c.which)
			}
		})
	}
	// A real login of the unverified user is refused the same way.
	if _, err := v.Verify(ctx, deviceLogin(t, p, "u2")); !errors.Is(err, ErrDomain) {
		t.Fatalf("unverified user through the device flow: %v", err)
	}
}

func TestConfigAndDiscoveryErrors(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{Users: testUsers})
	ctx := context.Background()
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no issuer", Config{ClientID: "x"}, "required"},
		{"no client", Config{Issuer: p.Issuer()}, "required"},
		{"issuer mismatch", Config{Issuer: p.Issuer() + "/", ClientID: "x", HTTPClient: p.HTTPClient()}, "did not match"},
		{"untrusted certificate", Config{Issuer: p.Issuer(), ClientID: "x"}, "certificate"},
		{"bad domain", Config{Issuer: p.Issuer(), ClientID: "x", HTTPClient: p.HTTPClient(), AllowedEmailDomains: []string{"a@b"}}, "not a domain"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(ctx, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestProviderDownIsUnavailable(t *testing.T) {
	p, v, _ := setup(t, oidctest.Config{}, nil)
	tok := p.Mint(t, oidctest.Token{})
	p.Close() // before the verifier ever fetched the keys
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
}
