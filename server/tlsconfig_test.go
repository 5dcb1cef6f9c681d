package server

import (
	"crypto/x509"
	"net"
	"strings"
	"testing"
)

func TestTLSConfigValidates(t *testing.T) {
	acme := func(domains ...string) TLSConfig { return TLSConfig{ACME: ACMEConfig{Domains: domains}} }
	for _, tc := range []struct {
		name   string
		tls    TLSConfig
		public string
		want   []string // substrings of the error; none: valid
	}{
		{"files", TLSConfig{CertFile: "c.pem", KeyFile: "k.pem"}, "", nil},
		{"cert without key", TLSConfig{CertFile: "c.pem"}, "", []string{"--tls-cert and --tls-key go together"}},
		{"files and acme", TLSConfig{CertFile: "c", KeyFile: "k", ACME: ACMEConfig{Domains: []string{"vpn.example.net"}}}, "",
			[]string{"exclude each other"}},
		{"acme", acme("vpn.example.net", "VPN2.Example.NET"), "", nil},
		{"acme flags without a domain", TLSConfig{ACME: ACMEConfig{Email: "a@b.c", DirectoryURL: "https://ca/dir",
			HTTPListen: ":80", DirectoryCAs: x509.NewCertPool()}}, "",
			[]string{"--acme-email needs", "--acme-directory needs", "--acme-http-listen needs", "--acme-ca-file needs"}},
		{"single label", acme("localhost"), "", []string{"fully qualified"}},
		{"wildcard", acme("*.example.net"), "", []string{"DNS-01"}},
		{"address", acme("192.0.2.1"), "", []string{"IP address"}},
		{"url", acme("https://vpn.example.net"), "", []string{"bare DNS name"}},
		{"port", acme("vpn.example.net:443"), "", []string{"bare DNS name"}},
		{"bad label", acme("-vpn.example.net"), "", []string{"bad label"}},
		{"underscore", acme("v_n.example.net"), "", []string{"character"}},
		{"directory not https", TLSConfig{ACME: ACMEConfig{Domains: []string{"vpn.example.net"}, DirectoryURL: "http://ca/dir"}}, "",
			[]string{"--acme-directory"}},
		{"email", TLSConfig{ACME: ACMEConfig{Domains: []string{"vpn.example.net"}, Email: "nobody"}}, "", []string{"--acme-email"}},
		{"http listen", TLSConfig{ACME: ACMEConfig{Domains: []string{"vpn.example.net"}, HTTPListen: "80"}}, "", []string{"--acme-http-listen"}},
		{"plaintext public url", TLSConfig{CertFile: "c", KeyFile: "k"}, "http://vpn.example.net:8080", []string{"serves TLS; want https://"}},
		{"https public url", TLSConfig{CertFile: "c", KeyFile: "k"}, "https://vpn.example.net", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", TLS: tc.tls, PublicURL: tc.public}
			got, err := cfg.validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if len(got.TLS.ACME.Domains) > 0 && (got.TLS.ACME.CacheDir == "" || got.TLS.ACME.Domains[1] != "vpn2.example.net") {
					t.Fatalf("defaults not filled: %+v", got.TLS.ACME)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// With TLS the derived URLs are https:// and rels://; with ACME the host
// is the first domain, the name on the certificate.
func TestDeriveEndpointsTLS(t *testing.T) {
	tcp := &net.TCPAddr{IP: net.IPv4zero, Port: 443}
	for _, tc := range []struct {
		name             string
		tls              TLSConfig
		public, instance string
		warnings         int
	}{
		{"files", TLSConfig{CertFile: "c", KeyFile: "k"}, "https://box.example:443", "rels://box.example:443", 1},
		{"acme", TLSConfig{ACME: ACMEConfig{Domains: []string{"vpn.example.net", "alt.example.net"}}},
			"https://vpn.example.net:443", "rels://vpn.example.net:443", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{DataDir: t.TempDir(), Listen: ":443", TLS: tc.tls,
				Hostname: func() (string, error) { return "box.example", nil }}
			cfg, err := cfg.validate()
			if err != nil {
				t.Fatal(err)
			}
			ep, warnings, err := deriveEndpoints(&cfg, tcp, nil)
			if err != nil {
				t.Fatal(err)
			}
			if ep.PublicURL != tc.public || ep.RelayInstanceURL != tc.instance || len(warnings) != tc.warnings {
				t.Fatalf("got %+v, warnings %q", ep, warnings)
			}
		})
	}
}
