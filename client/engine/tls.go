package engine

import (
	"crypto/tls"
	"fmt"
	"net/url"

	"google.golang.org/grpc"

	"petrel/internal/tlstrust"
)

// TLS. Management and signal URLs are https:// and relay URLs rels:// when
// petrel-server serves TLS (docs/https.md). The engine checks the server's
// certificate against Config.RootCAs (nil: the system roots) on all three
// dials, and reports a certificate the agent does not trust as such: login
// fails at once with the reason instead of retrying until the deadline as
// for a server that is down.

// managementDialOptions are the management dial's TLS credentials for an
// https:// URL (none for http://, which mgmt.Dial handles). They keep the
// last handshake error for managementCertError.
func (e *Engine) managementDialOptions() []grpc.DialOption {
	u, err := url.Parse(e.cfg.ManagementURL)
	if err != nil || u.Scheme != "https" {
		return nil
	}
	e.mgmtTLS = tlstrust.NewCreds(tlstrust.ClientConfig(e.cfg.RootCAs, u.Hostname()))
	return []grpc.DialOption{grpc.WithTransportCredentials(e.mgmtTLS)}
}

// managementCertError is non-nil when the last management handshake failed
// on the server's certificate (or the server does not speak TLS); it names
// the server and says what to do.
func (e *Engine) managementCertError() error {
	if e.mgmtTLS == nil {
		return nil
	}
	if ce := tlstrust.Explain(e.mgmtTLS.LastError()); ce != nil {
		return fmt.Errorf("management server %s: %w", e.cfg.ManagementURL, ce)
	}
	return nil
}

// controlTLS is the TLS client config of the signal and relay dials.
func (e *Engine) controlTLS() *tls.Config { return tlstrust.ClientConfig(e.cfg.RootCAs, "") }
