package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"petrel/internal/tlstrust"
	"petrel/server"
)

// tlsFlags are the TLS flags of `run` (docs/https.md).
type tlsFlags struct {
	cert, key   string
	domains     []string
	email       string
	directory   string
	caFile      string
	httpListen  string
	renewBefore time.Duration // debug knob
}

func (f *tlsFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.cert, "tls-cert", "", "serve TLS with this PEM certificate (chain) file; reloaded when it changes")
	fl.StringVar(&f.key, "tls-key", "", "PEM private key file of --tls-cert")
	fl.StringArrayVar(&f.domains, "acme-domain", nil,
		"serve TLS with a certificate for this name from an ACME CA (repeatable; the first is the default public host); accepts the CA's terms")
	fl.StringVar(&f.email, "acme-email", "", "contact address given to the ACME CA (expiry notices)")
	fl.StringVar(&f.directory, "acme-directory", "", "ACME directory URL (default Let's Encrypt)")
	fl.StringVar(&f.caFile, "acme-ca-file", "", "PEM file of the CA certificates to trust for the ACME directory's HTTPS (a private ACME server; default the system roots)")
	fl.StringVar(&f.httpListen, "acme-http-listen", "", "also answer ACME HTTP-01 challenges on this address, e.g. :80 (TLS-ALPN-01 on the main port is always on)")
	fl.DurationVar(&f.renewBefore, "debug-acme-renew-before", 0, "debug: renew ACME certificates this long before they expire (0 = a third of their lifetime)")
	_ = fl.MarkHidden("debug-acme-renew-before")
}

// config turns the flags into server.TLSConfig (checked by server.New).
func (f *tlsFlags) config() (server.TLSConfig, error) {
	roots, err := tlstrust.LoadRoots(f.caFile)
	if err != nil {
		return server.TLSConfig{}, fmt.Errorf("--acme-ca-file: %w", err)
	}
	return server.TLSConfig{
		CertFile: f.cert, KeyFile: f.key,
		ACME: server.ACMEConfig{Domains: f.domains, Email: f.email, DirectoryURL: f.directory, DirectoryCAs: roots,
			HTTPListen: f.httpListen, RenewBefore: f.renewBefore},
	}, nil
}
