package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloadEvery is how often, at most, a handshake checks the certificate
// files for a change (one stat of each).
const certReloadEvery = time.Second

// certFiles serves the certificate in a PEM certificate (chain) file and
// key file and reloads them when either changes, so a renewal by an outside
// tool (certbot, a secrets manager) counts from the next handshake on,
// without a restart. A pair that does not load (a half-written file, a
// key of another certificate) is logged and the previous one kept until
// the files change again.
type certFiles struct {
	certPath, keyPath string
	every             time.Duration
	now               func() time.Time
	log               *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	stamp     [2]fileStamp // of the files cert came from
	checked   time.Time    // last stat
	lastError string       // last reload failure, logged once
}

// fileStamp identifies a version of a file: the same file (inode), with
// the same modification time and size. A file replaced by a rename, as
// most tools do, is another file even with a copied mtime.
type fileStamp struct{ fi os.FileInfo }

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi}, nil
}

func (a fileStamp) same(b fileStamp) bool {
	return a.fi != nil && b.fi != nil && os.SameFile(a.fi, b.fi) &&
		a.fi.ModTime().Equal(b.fi.ModTime()) && a.fi.Size() == b.fi.Size()
}

// loadCertFiles loads the pair once; failing here fails the server's start.
func loadCertFiles(certPath, keyPath string, every time.Duration, log *slog.Logger) (*certFiles, error) {
	if every <= 0 {
		every = certReloadEvery
	}
	cf := &certFiles{certPath: certPath, keyPath: keyPath, every: every, now: time.Now, log: log}
	cert, stamp, err := cf.load()
	if err != nil {
		return nil, err
	}
	cf.cert, cf.stamp, cf.checked = cert, stamp, cf.now()
	return cf, nil
}

// load reads the pair with the stamps taken before reading, so a change
// made while reading is seen by the next check.
func (cf *certFiles) load() (*tls.Certificate, [2]fileStamp, error) {
	var stamp [2]fileStamp
	for i, p := range []string{cf.certPath, cf.keyPath} {
		st, err := stampOf(p)
		if err != nil {
			return nil, stamp, fmt.Errorf("load --tls-cert/--tls-key: %w", err)
		}
		stamp[i] = st
	}
	cert, err := tls.LoadX509KeyPair(cf.certPath, cf.keyPath)
	if err != nil {
		return nil, stamp, fmt.Errorf("load --tls-cert %s / --tls-key %s: %w", cf.certPath, cf.keyPath, err)
	}
	return &cert, stamp, nil
}

// GetCertificate is the tls.Config hook: the current certificate, reloaded
// first when the files changed since the last check.
func (cf *certFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	now := cf.now()
	if now.Sub(cf.checked) < cf.every {
		return cf.cert, nil
	}
	cf.checked = now
	changed := false
	for i, p := range []string{cf.certPath, cf.keyPath} {
		if st, err := stampOf(p); err != nil || !st.same(cf.stamp[i]) {
			changed = true
		}
	}
	if !changed {
		return cf.cert, nil
	}
	cert, stamp, err := cf.load()
	if err != nil {
		if msg := err.Error(); msg != cf.lastError {
			cf.lastError = msg
			cf.log.Warn("TLS certificate files changed but do not load; still serving the previous certificate", "err", err)
		}
		return cf.cert, nil
	}
	cf.cert, cf.stamp, cf.lastError = cert, stamp, ""
	cf.log.Info("TLS certificate reloaded", certAttrs(cert)...)
	return cf.cert, nil
}

// Leaf is the certificate being served.
func (cf *certFiles) Leaf() *x509.Certificate {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	return cf.cert.Leaf
}

// certAttrs describe a certificate for the log.
func certAttrs(c *tls.Certificate) []any {
	if c == nil || c.Leaf == nil {
		return nil
	}
	return []any{"names", c.Leaf.DNSNames, "not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339),
		"serial", c.Leaf.SerialNumber.Text(16)}
}
