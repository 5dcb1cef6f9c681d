package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/crypto/acme"
)

// ALPN protocols of the listener.
const (
	alpnHTTP1 = "http/1.1"
	alpnH2    = "h2"
)

// startTLS loads the certificate files or starts ACME, and returns the
// listener's TLS configuration (nil: plaintext). It warns when the
// advertised public URL names a host the certificate does not cover.
func (s *Server) startTLS() (*tls.Config, error) {
	t := &s.cfg.TLS
	switch {
	case t.CertFile != "":
		cf, err := loadCertFiles(t.CertFile, t.KeyFile, t.reloadEvery, s.log)
		if err != nil {
			return nil, err
		}
		s.certs = cf
		s.log.Info("serving TLS from certificate files", append([]any{"cert", t.CertFile}, certAttrs(cf.cert)...)...)
		s.checkPublicHost(func(host string) error { return cf.Leaf().VerifyHostname(host) })
		return listenerTLS(cf.GetCertificate, false), nil
	case len(t.ACME.Domains) > 0:
		a, err := startACME(t.ACME, s.log)
		if err != nil {
			return nil, err
		}
		s.acme = a
		s.log.Info("serving TLS with ACME certificates", "domains", t.ACME.Domains, "cache", t.ACME.CacheDir)
		if _, port, _ := net.SplitHostPort(s.ln.Addr().String()); port != "443" && t.ACME.HTTPListen == "" {
			s.log.Warn("ACME TLS-ALPN-01: the CA connects to port 443 of each domain; forward it to this listener, or add --acme-http-listen :80 for HTTP-01",
				"listen", s.ln.Addr().String())
		}
		s.checkPublicHost(func(host string) error {
			if !slices.Contains(t.ACME.Domains, host) {
				return x509.HostnameError{Host: host}
			}
			return nil
		})
		return listenerTLS(a.GetCertificate, true), nil
	}
	return nil, nil
}

// checkPublicHost warns when agents would be sent to a name the
// certificate does not cover: they would refuse it.
func (s *Server) checkPublicHost(covers func(host string) error) {
	u, err := url.Parse(s.ep.PublicURL)
	if err != nil || u.Scheme != "https" {
		return
	}
	if err := covers(u.Hostname()); err != nil {
		s.log.Warn("the public URL's host is not on the TLS certificate; agents will refuse it (set --public-url to a name it lists)",
			"public_url", s.ep.PublicURL, "err", err)
	}
}

// listenerTLS is the TLS configuration of the one port. The application
// protocol is picked per client, not by a fixed preference: gRPC clients
// offer only h2 and get it; clients that also speak HTTP/1.1 (curl,
// browsers, the relay's WebSocket, the admin CLI) get http/1.1, because
// REST and the relay are served over HTTP/1.1 only and everything that
// speaks HTTP/2 on this port goes to the gRPC server (package split).
// With ACME, a client that offers only acme-tls/1 is the CA checking a
// TLS-ALPN-01 challenge; autocert's GetCertificate answers it.
func listenerTLS(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), acmeChallenges bool) *tls.Config {
	byProto := map[string]*tls.Config{}
	for _, p := range []string{"", alpnHTTP1, alpnH2, acme.ALPNProto} {
		c := &tls.Config{GetCertificate: getCert, MinVersion: tls.VersionTLS12}
		if p != "" {
			c.NextProtos = []string{p}
		}
		byProto[p] = c
	}
	return &tls.Config{
		GetCertificate: getCert,
		MinVersion:     tls.VersionTLS12,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			return byProto[chooseALPN(hello.SupportedProtos, acmeChallenges)], nil
		},
	}
}

// chooseALPN picks the protocol for a client offering offered ("" = none).
func chooseALPN(offered []string, acmeChallenges bool) string {
	switch {
	case acmeChallenges && len(offered) == 1 && offered[0] == acme.ALPNProto:
		return acme.ALPNProto
	case slices.Contains(offered, alpnHTTP1):
		return alpnHTTP1
	case slices.Contains(offered, alpnH2):
		return alpnH2
	}
	return ""
}

// stopTLS ends ACME's background work (before the listener closes: a
// handshake waiting for a certificate then fails at once).
func (s *Server) stopTLS() {
	if s.acme != nil {
		s.acme.stop()
	}
}

// ACMEHTTPAddr is the HTTP-01 listener's address (nil without one).
func (s *Server) ACMEHTTPAddr() net.Addr {
	if s.acme == nil {
		return nil
	}
	return s.acme.HTTPAddr()
}

// errTLSPlainPublicURL is the validation error of an http:// public URL
// on a listener that serves TLS.
func errTLSPlainPublicURL(u string) error {
	return fmt.Errorf("--public-url %q: the listener serves TLS; want https://", u)
}

// TLSSummary describes how the listener serves TLS, for the banner ("" =
// plaintext).
func (s *Server) TLSSummary() string {
	t := &s.cfg.TLS
	switch {
	case t.CertFile != "":
		return fmt.Sprintf("certificate %s (reloaded when it changes)", t.CertFile)
	case len(t.ACME.Domains) > 0:
		sum := fmt.Sprintf("ACME for %s (cache %s; TLS-ALPN-01", strings.Join(t.ACME.Domains, ", "), t.ACME.CacheDir)
		if a := s.ACMEHTTPAddr(); a != nil {
			sum += ", HTTP-01 on " + a.String()
		}
		return sum + ")"
	}
	return ""
}
