package daemon

import (
	"crypto/x509"
	"fmt"

	"petrel/internal/tlstrust"
)

// rootCAs loads Options.CAFile for one engine start or login (nil: the
// system roots). It is read each time, so a replaced CA file counts from
// the next `petrel up` or reconnect on.
func (d *Daemon) rootCAs() (*x509.CertPool, error) {
	roots, err := tlstrust.LoadRoots(d.opts.CAFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	return roots, nil
}
