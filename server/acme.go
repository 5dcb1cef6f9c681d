package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"petrel/internal/privdir"
)

// errACMEStopped fails the ACME client's requests once the server stops.
var errACMEStopped = errors.New("server stopping")

// acmeCerts obtains and renews the listener's certificates with ACME
// (golang.org/x/crypto/acme/autocert). autocert answers TLS-ALPN-01 in the
// listener's handshakes and HTTP-01 on the optional HTTP listener; it
// renews each certificate on a timer, a third of its lifetime before
// expiry (or ACMEConfig.RenewBefore). Keys and certificates live in the
// cache directory (0700, files 0600).
//
// Goroutines: the HTTP-01 server, one that obtains the certificates at
// start so the first agent does not wait for them, and autocert's renewal
// timers. stop fails the ACME requests in flight, so none outlives the
// server by more than a renewal that has just fired.
type acmeCerts struct {
	mgr     *autocert.Manager
	domains []string
	log     *slog.Logger
	cancel  context.CancelFunc // ends every ACME request

	httpSrv *http.Server // HTTP-01; nil without ACMEConfig.HTTPListen
	httpLn  net.Listener
	wg      sync.WaitGroup

	errMu   sync.Mutex
	lastErr map[string]time.Time // when an issuance error was last logged, by domain
}

func startACME(c ACMEConfig, log *slog.Logger) (*acmeCerts, error) {
	loose, err := privdir.Ensure(c.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("acme cache dir: %w", err)
	}
	if loose != 0 {
		log.Warn("ACME cache dir was open to other users; tightened to 0700", "dir", c.CacheDir, "was", fmt.Sprintf("%04o", loose))
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: c.DirectoryCAs, MinVersion: tls.VersionTLS12}
	dir := c.DirectoryURL
	if dir == "" {
		dir = autocert.DefaultACMEDirectory
	}
	a := &acmeCerts{
		domains: c.Domains,
		log:     log,
		cancel:  cancel,
		lastErr: map[string]time.Time{},
		mgr: &autocert.Manager{
			Prompt:      autocert.AcceptTOS,
			Cache:       loggingCache{autocert.DirCache(c.CacheDir), log},
			HostPolicy:  onlyDomains(c.Domains),
			Email:       c.Email,
			RenewBefore: c.RenewBefore,
			Client: &acme.Client{DirectoryURL: dir, UserAgent: "petrel-server",
				HTTPClient: &http.Client{Transport: stoppable{ctx, tr}}},
		},
	}
	if c.HTTPListen != "" {
		if a.httpLn, err = net.Listen("tcp", c.HTTPListen); err != nil {
			cancel()
			return nil, fmt.Errorf("acme http-01: listen on %s: %w", c.HTTPListen, err)
		}
		a.httpSrv = &http.Server{
			Handler:           a.mgr.HTTPHandler(nil), // challenges; anything else is redirected to https
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
		a.wg.Add(1)
		go func() { defer a.wg.Done(); _ = a.httpSrv.Serve(a.httpLn) }()
	}
	a.wg.Add(1)
	go a.prefetch(ctx)
	return a, nil
}

// onlyDomains is the host policy: certificates for the configured
// domains only. Unlike autocert.HostWhitelist it ignores a port, which the
// Host header of an HTTP-01 request carries when the listener is not on
// port 80 (behind a port forward, or in tests).
func onlyDomains(domains []string) autocert.HostPolicy {
	return func(_ context.Context, host string) error {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !slices.Contains(domains, strings.ToLower(strings.TrimSuffix(host, "."))) {
			return fmt.Errorf("acme: host %q is not an --acme-domain", host)
		}
		return nil
	}
}

// prefetch obtains (or loads from the cache) each domain's certificate,
// which also starts its renewal timer.
func (a *acmeCerts) prefetch(ctx context.Context) {
	defer a.wg.Done()
	for _, d := range a.domains {
		if ctx.Err() != nil {
			return
		}
		// A hello an ECDSA-capable client would send: the certificate
		// most clients get.
		_, _ = a.GetCertificate(&tls.ClientHelloInfo{ServerName: d,
			SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
			SupportedCurves:  []tls.CurveID{tls.CurveP256},
			CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}})
	}
}

// GetCertificate is the listener's tls.Config hook. A hello without a
// server name (a client dialing the address) gets the first domain's
// certificate. Failures for a configured domain are logged at most once a
// minute per domain; other names (scanners) only fail their handshake.
func (a *acmeCerts) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName == "" {
		h := *hello
		h.ServerName = a.domains[0]
		hello = &h
	}
	cert, err := a.mgr.GetCertificate(hello)
	if err != nil && slices.Contains(a.domains, strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))) &&
		!slices.Contains(hello.SupportedProtos, acme.ALPNProto) {
		a.logIssueError(strings.ToLower(strings.TrimSuffix(hello.ServerName, ".")), err)
	}
	return cert, err
}

func (a *acmeCerts) logIssueError(domain string, err error) {
	now := time.Now()
	a.errMu.Lock()
	last, seen := a.lastErr[domain]
	quiet := seen && now.Sub(last) < time.Minute
	if !quiet {
		a.lastErr[domain] = now
	}
	a.errMu.Unlock()
	if !quiet {
		a.log.Warn("ACME: no certificate", "domain", domain, "err", err)
	}
}

// stop ends the HTTP-01 server and fails the ACME requests in flight, then
// waits for the prefetch. autocert has no way to cancel its renewal
// timers: one that fires later fails at once and sleeps again.
func (a *acmeCerts) stop() {
	a.cancel()
	if a.httpSrv != nil {
		_ = a.httpSrv.Close()
	}
	a.wg.Wait()
}

// HTTPAddr is the HTTP-01 listener's address (nil without one).
func (a *acmeCerts) HTTPAddr() net.Addr {
	if a.httpLn == nil {
		return nil
	}
	return a.httpLn.Addr()
}

// stoppable fails requests once ctx ends and cancels those in flight then.
type stoppable struct {
	ctx  context.Context
	next http.RoundTripper
}

func (s stoppable) RoundTrip(r *http.Request) (*http.Response, error) {
	if s.ctx.Err() != nil {
		return nil, errACMEStopped
	}
	ctx, cancel := context.WithCancel(r.Context())
	unhook := context.AfterFunc(s.ctx, cancel)
	resp, err := s.next.RoundTrip(r.WithContext(ctx))
	if err != nil {
		unhook()
		cancel()
		return nil, err
	}
	resp.Body = &releaseBody{ReadCloser: resp.Body, release: func() { unhook(); cancel() }}
	return resp, nil
}

// releaseBody runs release once the body is closed.
type releaseBody struct {
	io.ReadCloser
	release func()
	once    sync.Once
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// loggingCache logs each certificate autocert stores: every issuance and
// renewal, with its expiry, so an operator can see renewals happen.
type loggingCache struct {
	autocert.DirCache
	log *slog.Logger
}

func (c loggingCache) Put(ctx context.Context, name string, data []byte) error {
	if err := c.DirCache.Put(ctx, name, data); err != nil {
		c.log.Warn("ACME: store in cache", "name", name, "err", err)
		return err
	}
	if strings.Contains(name, "+token") || strings.HasPrefix(name, "acme_account") {
		return nil
	}
	if leaf := firstCert(data); leaf != nil {
		c.log.Info("ACME certificate obtained", "domain", name, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339),
			"serial", leaf.SerialNumber.Text(16), "issuer", leaf.Issuer.CommonName)
	}
	return nil
}

// firstCert parses the first certificate of autocert's cache entry (a
// private key followed by the chain).
func firstCert(data []byte) *x509.Certificate {
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil
		}
		if b.Type == "CERTIFICATE" {
			c, _ := x509.ParseCertificate(b.Bytes)
			return c
		}
	}
}
