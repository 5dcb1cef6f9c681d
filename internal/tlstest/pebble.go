package tlstest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pebblePkg is Pebble's command, a tool dependency in go.mod
// (`go get -tool`), so the module cache holds it for offline builds.
const pebblePkg = "github.com/letsencrypt/pebble/v2/cmd/pebble"

// PebbleOptions configure a Pebble instance.
type PebbleOptions struct {
	// TLSPort and HTTPPort are the ports Pebble connects to, on the
	// address the DNS server gives for a domain, to validate TLS-ALPN-01
	// and HTTP-01 challenges.
	TLSPort, HTTPPort int
	// DNSServer is host:port of the DNS server Pebble resolves domains
	// with (over TCP): see StartDNS.
	DNSServer string
	// Validity is the lifetime of the certificates Pebble issues (default
	// Pebble's 90 days).
	Validity time.Duration
}

// Pebble is Let's Encrypt's ACME test server running for one test. Its
// validation is real: it connects back to the ports in PebbleOptions.
type Pebble struct {
	DirectoryURL string
	// DirectoryCA signed Pebble's own HTTPS certificate: an ACME client
	// must trust it to reach DirectoryURL.
	DirectoryCA *CA
	// RootPEM is the root Pebble issues certificates under (fetched from
	// its management interface); Roots holds it.
	RootPEM []byte
	Roots   *x509.CertPool
}

var pebbleBuild struct {
	once sync.Once
	path string
	err  error
}

// pebbleBinary builds Pebble once per test binary with `go tool -n`, which
// caches the executable and prints its path.
func pebbleBinary() (string, error) {
	b := &pebbleBuild
	b.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "go", "tool", "-n", pebblePkg)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			b.err = fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
			return
		}
		b.path = strings.TrimSpace(string(out))
	})
	return b.path, b.err
}

// StartPebble runs Pebble on loopback ports until the test ends. When
// Pebble cannot be built the test fails if the CI environment variable is
// set, and is skipped otherwise.
func StartPebble(t testing.TB, o PebbleOptions) *Pebble {
	t.Helper()
	bin, err := pebbleBinary()
	if err != nil {
		msg := fmt.Sprintf("cannot build the Pebble ACME test server (%s, a tool dependency in go.mod: `go mod download` fetches it): %v", pebblePkg, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	ca := NewCA(t, "pebble directory CA")
	cert, key := ca.IssueFiles(t, dir, "127.0.0.1", "localhost")
	// Pebble is told its ports before it binds them: another process may
	// take one in between, and then Pebble exits; try new ones.
	for try := 1; ; try++ {
		p, err := runPebble(t, bin, o, dir, ca, cert, key)
		if err == nil {
			return p
		}
		if !errors.Is(err, errPebbleExited) || try == 3 {
			t.Fatal(err)
		}
	}
}

// errPebbleExited: Pebble ended before it served.
var errPebbleExited = errors.New("pebble exited")

func runPebble(t testing.TB, bin string, o PebbleOptions, dir string, ca *CA, cert, key string) (*Pebble, error) {
	listen := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	mgmt := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	var cfg struct {
		Pebble map[string]any `json:"pebble"`
	}
	cfg.Pebble = map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": cert, "privateKey": key,
		"httpPort": o.HTTPPort, "tlsPort": o.TLSPort,
		"ocspResponderURL": "", "externalAccountBindingRequired": false,
		"keyAlgorithm": "ecdsa",
	}
	if o.Validity > 0 {
		cfg.Pebble["profiles"] = map[string]any{"default": map[string]any{
			"description": "test", "validityPeriod": int(o.Validity / time.Second)}}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		return nil, err
	}
	args := []string{"-config", cfgFile}
	if o.DNSServer != "" {
		args = append(args, "-dnsserver", o.DNSServer)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pebble: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	p := &Pebble{DirectoryURL: "https://" + listen + "/dir", DirectoryCA: ca}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	end := time.Now().Add(30 * time.Second)
	for {
		root, err := get(hc, "https://"+mgmt+"/roots/0")
		if err == nil {
			if _, err = get(hc, p.DirectoryURL); err == nil {
				p.RootPEM = root
				break
			}
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("%w:\n%s", errPebbleExited, out.String())
		default:
		}
		if time.Now().After(end) {
			stop()
			return nil, fmt.Errorf("pebble not serving: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("pebble output:\n%s", out.String())
		}
	})
	p.Roots = x509.NewCertPool()
	if !p.Roots.AppendCertsFromPEM(p.RootPEM) {
		return nil, fmt.Errorf("pebble root is not PEM: %q", p.RootPEM)
	}
	return p, nil
}

// WriteRoot writes RootPEM to a file in dir, for a --ca-file.
func (p *Pebble) WriteRoot(t testing.TB, dir string) string {
	t.Helper()
	f := filepath.Join(dir, "pebble-root.pem")
	if err := os.WriteFile(f, p.RootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func get(hc *http.Client, url string) ([]byte, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}

// syncBuffer collects a child's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
