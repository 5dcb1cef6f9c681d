package server

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ACMECacheDir is where, inside the data directory, ACME keys and
// certificates are kept (ACMEConfig.CacheDir).
const ACMECacheDir = "acme"

// TLSConfig makes the one TCP listener serve TLS (docs/https.md): from
// certificate files, or from certificates obtained with ACME. The zero
// value serves plaintext.
type TLSConfig struct {
	// CertFile and KeyFile are PEM files (the certificate followed by its
	// chain; the private key), reloaded when they change.
	CertFile, KeyFile string
	// ACME obtains and renews certificates from an ACME CA instead.
	ACME ACMEConfig

	reloadEvery time.Duration // how often files are checked (0: certReloadEvery; tests shorten it)
}

// ACMEConfig configures certificates from an ACME CA, answered with the
// TLS-ALPN-01 challenge on the listener itself and, when HTTPListen is
// set, HTTP-01 there. Using it accepts the CA's terms of service.
type ACMEConfig struct {
	Domains      []string       // names on the certificate; the first one is the default public host
	Email        string         // contact for the CA (expiry notices), optional
	DirectoryURL string         // the CA's directory; "" = Let's Encrypt
	DirectoryCAs *x509.CertPool // trusted for the directory's HTTPS; nil = the system roots
	HTTPListen   string         // host:port for HTTP-01 (usually ":80"); "" = none
	CacheDir     string         // account key and certificates; "" = DATA_DIR/acme
	// RenewBefore renews a certificate this long before it expires (a
	// debug knob); 0 = a third of its lifetime, capped at 30 days.
	RenewBefore time.Duration
}

// Enabled reports whether the listener serves TLS.
func (t *TLSConfig) Enabled() bool { return t.CertFile != "" || len(t.ACME.Domains) > 0 }

// validate checks t, fills the ACME defaults and returns every problem.
func (t *TLSConfig) validate(dataDir string) []error {
	var errs []error
	a := &t.ACME
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if t.CertFile != "" && len(a.Domains) > 0 {
		errs = append(errs, errors.New("--tls-cert/--tls-key and --acme-domain exclude each other"))
	}
	if len(a.Domains) == 0 {
		for _, f := range []struct {
			flag string
			set  bool
		}{{"--acme-email", a.Email != ""}, {"--acme-directory", a.DirectoryURL != ""},
			{"--acme-http-listen", a.HTTPListen != ""}, {"--acme-ca-file", a.DirectoryCAs != nil}} {
			if f.set {
				errs = append(errs, fmt.Errorf("%s needs --acme-domain", f.flag))
			}
		}
		return errs
	}
	a.Domains = slices.Clone(a.Domains) // normalised below; the caller's slice stays as given
	for i, d := range a.Domains {
		a.Domains[i] = strings.ToLower(strings.TrimSpace(d))
		if err := checkACMEDomain(a.Domains[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if a.DirectoryURL != "" {
		if u, err := url.Parse(a.DirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("--acme-directory %q: want an https:// URL", a.DirectoryURL))
		}
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t\r\n,<>")) {
		errs = append(errs, fmt.Errorf("--acme-email %q: want an e-mail address", a.Email))
	}
	if a.HTTPListen != "" {
		if err := checkHostPort("--acme-http-listen", a.HTTPListen); err != nil {
			errs = append(errs, err)
		}
	}
	if a.RenewBefore < 0 {
		errs = append(errs, errors.New("--debug-acme-renew-before must not be negative"))
	}
	if a.CacheDir == "" && dataDir != "" {
		a.CacheDir = filepath.Join(dataDir, ACMECacheDir)
	}
	return errs
}

// checkACMEDomain accepts a DNS name an ACME CA can validate with
// TLS-ALPN-01 or HTTP-01: at least two labels, no wildcard, no address.
func checkACMEDomain(d string) error {
	bad := func(why string) error { return fmt.Errorf("--acme-domain %q: %s", d, why) }
	switch {
	case d == "":
		return bad("empty")
	case strings.HasPrefix(d, "*."):
		return bad("wildcard certificates need the DNS-01 challenge, which is not supported; use --tls-cert/--tls-key")
	case net.ParseIP(d) != nil:
		return bad("an IP address; want a DNS name")
	case strings.ContainsAny(d, ":/"):
		return bad("want a bare DNS name, without scheme or port")
	case !strings.Contains(d, ".") || strings.HasSuffix(d, ".") || len(d) > 253:
		return bad("want a fully qualified DNS name such as vpn.example.net")
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return bad("bad label " + fmt.Sprintf("%q", label))
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return bad(fmt.Sprintf("character %q (want letters, digits and hyphens; punycode for other scripts)", r))
			}
		}
	}
	return nil
}
