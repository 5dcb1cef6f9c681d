// Package tlstrust is the client side of petrel-server's TLS: it loads the
// certificates a petrel client trusts (the system roots, or a private CA
// given with --ca-file), builds the TLS settings of the dials to the
// server (management and signal gRPC, the relay WebSocket, the admin REST
// API), and turns a failed certificate check into an error that says so
// instead of a bare "unavailable".
//
// Imported by the agent (client/engine, client/daemon, cmd/petrel) and by
// the admin commands of cmd/petrel-server; it depends on no server code.
// Everything here is safe for concurrent use.
package tlstrust

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// LoadRoots reads the PEM certificates in file into a pool. An empty file
// name means the system roots and returns nil, which is what tls.Config
// expects for them. A file without a single certificate is an error: a
// wrong path or a key file given by mistake would otherwise trust nothing.
func LoadRoots(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA file %s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// ClientConfig returns the TLS client settings for a dial to petrel-server:
// certificates checked against roots (nil: the system roots), TLS 1.2 or
// later. serverName may be empty when the dialing library fills it in from
// the address (grpc-go, net/http).
func ClientConfig(roots *x509.CertPool, serverName string) *tls.Config {
	return &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12}
}

// CertError is a TLS handshake that failed on the server's certificate, or
// on a server that does not speak TLS at all.
type CertError struct {
	Reason string // what went wrong, for people: "TLS certificate not trusted"
	Hint   string // what to do about it, or ""
	Err    error  // the crypto/x509 or crypto/tls error
}

func (e *CertError) Error() string {
	msg := e.Reason + ": " + e.Err.Error()
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *CertError) Unwrap() error { return e.Err }

// Explain returns err as a *CertError when it is (or wraps) a failed
// certificate check or a TLS dial to a plaintext server, else nil.
func Explain(err error) *CertError {
	if err == nil {
		return nil
	}
	var ce *CertError
	if errors.As(err, &ce) {
		return ce
	}
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknown):
		return &CertError{Reason: "TLS certificate not trusted", Hint: "use --ca-file for a private CA", Err: unknown}
	case errors.As(err, &hostname):
		return &CertError{Reason: "TLS certificate not valid for this name", Hint: "connect by a name the certificate lists", Err: hostname}
	case errors.As(err, &invalid):
		return &CertError{Reason: "TLS certificate rejected", Err: invalid}
	case errors.As(err, &verify):
		return &CertError{Reason: "TLS certificate rejected", Err: verify.Err}
	case errors.As(err, &record):
		return &CertError{Reason: "server does not speak TLS", Hint: "is the URL http:// rather than https://?", Err: record}
	}
	return nil
}
