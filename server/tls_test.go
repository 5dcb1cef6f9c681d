package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"petrel/client/mgmt"
	"petrel/internal/keys"
	"petrel/internal/tlstest"
	"petrel/internal/tlstrust"
	"petrel/management"
	"petrel/proto/managementpb"
	relayclient "petrel/relay/client"
	signalclient "petrel/signal/client"
)

func TestChooseALPN(t *testing.T) {
	for _, tc := range []struct {
		offered []string
		acme    bool
		want    string
	}{
		{[]string{"h2"}, false, "h2"},                            // grpc-go
		{[]string{"h2", "http/1.1"}, false, "http/1.1"},          // curl, browsers, net/http
		{[]string{"http/1.1"}, false, "http/1.1"},                // the relay's WebSocket
		{nil, false, ""},                                         // no ALPN: sniffed
		{[]string{"acme-tls/1"}, true, "acme-tls/1"},             // TLS-ALPN-01 validator
		{[]string{"acme-tls/1"}, false, ""},                      // not with certificate files
		{[]string{"acme-tls/1", "h2"}, true, "h2"},               // not a validator
		{[]string{"spdy/3", "http/1.1", "h2"}, true, "http/1.1"}, // order does not matter
	} {
		if got := chooseALPN(tc.offered, tc.acme); got != tc.want {
			t.Errorf("chooseALPN(%q, acme=%v) = %q, want %q", tc.offered, tc.acme, got, tc.want)
		}
	}
}

// tlsClient is what an admin tool does: HTTP/2 attempted, roots given.
func tlsClient(roots *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: tlstrust.ClientConfig(roots, "")}}
}

// With certificate files: REST, gRPC (management and signal) and the
// relay all work over TLS on the one port; replacing the files changes
// the certificate of new handshakes without a restart, and a broken
// replacement keeps the previous one.
func TestTLSFilesServeEverythingAndReload(t *testing.T) {
	ctx := testCtx(t)
	dir, certDir := t.TempDir(), t.TempDir()
	ca := tlstest.NewCA(t, "server test CA")
	certFile, keyFile := ca.IssueFiles(t, certDir, "127.0.0.1")
	cfg := loopbackConfig(t, dir)
	cfg.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile, reloadEvery: 10 * time.Millisecond}
	srv := start(t, cfg)
	addr := srv.Addr().String()
	base := "https://" + addr
	if srv.PublicURL() != base || srv.RelayURL() != "rels://"+addr {
		t.Fatalf("endpoints %+v", srv.Endpoints())
	}

	// REST over TLS, negotiated as HTTP/1.1 although the client offers h2.
	hc := tlsClient(ca.Pool())
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
		t.Fatalf("healthz: %s over %s", resp.Status, resp.Proto)
	}
	// A client that does not trust the CA is refused by its own check.
	if _, err := tlsClient(nil).Get(base + "/healthz"); tlstrust.Explain(err) == nil {
		t.Fatalf("untrusted certificate accepted or not explained: %v", err)
	}

	// gRPC: login, then signal and the relay with what login returned.
	svc := srv.Management()
	_, setupKey, err := svc.CreateSetupKey(ctx, svc.Accounts()[0], management.SetupKeyInput{Name: "t", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	creds := tlstrust.NewCreds(tlstrust.ClientConfig(ca.Pool(), "127.0.0.1"))
	mc, err := mgmt.Dial(ctx, base, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	priv, _ := keys.NewPrivate()
	login, err := mc.Login(ctx, priv, &managementpb.LoginRequest{SetupKey: setupKey, Hostname: "tls-agent"})
	if err != nil {
		t.Fatalf("login over TLS: %v", err)
	}
	sc := login.GetServerConfig()
	if sc.GetSignalUrl() != base || strings.Join(sc.GetRelay().GetUrls(), " ") != "rels://"+addr {
		t.Fatalf("server config: %v", sc)
	}
	sig := signalclient.New(signalclient.Config{Target: addr, TLS: true, TLSConfig: tlstrust.ClientConfig(ca.Pool(), ""),
		Key: priv, ServerKey: svc.ServerKey().Public()})
	if err := sig.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sig.Stop()
	waitFor(t, "signal over TLS", sig.Connected)
	rc := relayclient.New(relayclient.Config{URLs: sc.GetRelay().GetUrls(), Key: priv.Public(),
		Token: func() string { return sc.GetRelay().GetToken() }, TLSConfig: tlstrust.ClientConfig(ca.Pool(), "")})
	if err := rc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer rc.Stop()
	waitFor(t, "relay over rels://", rc.Connected)

	// Reload.
	serial := func() string {
		s, err := tlstest.Serial(addr, "127.0.0.1", ca.Pool())
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		return s
	}
	first := serial()
	newCert, newKey := ca.Issue(t, "127.0.0.1")
	replace(t, certFile, newCert)
	replace(t, keyFile, newKey)
	want := leafSerial(t, newCert)
	waitFor(t, "the replaced certificate", func() bool { return serial() == want })
	if want == first {
		t.Fatal("test issued the same serial twice")
	}
	// A certificate without its key (the key file not written yet): the
	// previous pair stays in service.
	half, _ := ca.Issue(t, "127.0.0.1")
	replace(t, certFile, half)
	time.Sleep(100 * time.Millisecond) // ten reload periods
	if got := serial(); got != want {
		t.Fatalf("served %s after a half-written update, want the previous %s", got, want)
	}
	c3, k3 := ca.Issue(t, "127.0.0.1")
	replace(t, keyFile, k3)
	replace(t, certFile, c3)
	want3 := leafSerial(t, c3)
	waitFor(t, "the repaired certificate", func() bool { return serial() == want3 })
}

func replace(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path+".new", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

func leafSerial(t *testing.T, certPEM []byte) string {
	t.Helper()
	c := firstCert(certPEM)
	if c == nil {
		t.Fatal("no certificate in PEM")
	}
	return c.SerialNumber.Text(16)
}

// ACME with HTTP-01 against Pebble: TLS-ALPN-01 cannot succeed (Pebble
// checks it on a port where nothing listens), so autocert falls back to
// HTTP-01 on the extra listener. The account key and certificate are kept
// private in DATA_DIR/acme, and a restart serves the cached certificate
// without asking the CA.
func TestACMEHTTP01AndCache(t *testing.T) {
	const domain = "http01.petrel.test"
	dnsAddr := tlstest.StartDNS(t, map[string]netip.Addr{domain: netip.MustParseAddr("127.0.0.1")})
	httpPort := tlstest.FreePort(t)
	peb := tlstest.StartPebble(t, tlstest.PebbleOptions{TLSPort: tlstest.FreePort(t), HTTPPort: httpPort, DNSServer: dnsAddr})
	dir := t.TempDir()
	cfg := loopbackConfig(t, dir)
	cfg.TLS.ACME = ACMEConfig{Domains: []string{domain}, DirectoryURL: peb.DirectoryURL, DirectoryCAs: peb.DirectoryCA.Pool(),
		HTTPListen: fmt.Sprintf("127.0.0.1:%d", httpPort)}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	addr := srv.Addr().String()
	if want := "https://" + domain + ":" + portOf(addr); srv.PublicURL() != want || srv.RelayURL() != "rels://"+domain+":"+portOf(addr) {
		t.Fatalf("endpoints %+v, want public URL %s", srv.Endpoints(), want)
	}
	var serial string
	var lastErr error
	end := time.Now().Add(2 * deadline)
	for serial == "" {
		if serial, lastErr = tlstest.Serial(addr, domain, peb.Roots); time.Now().After(end) {
			t.Fatalf("no certificate from Pebble: %v", lastErr)
		}
	}

	// The HTTP-01 listener sends everything else to https.
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", fmt.Sprintf("http://127.0.0.1:%d/api/peers", httpPort), nil)
	req.Host = domain
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || loc != "https://"+domain+"/api/peers" {
		t.Fatalf("HTTP-01 listener answered %s, Location %q", resp.Status, loc)
	}

	cache := filepath.Join(dir, ACMECacheDir)
	if m := fileMode(t, cache); m != 0o700 {
		t.Errorf("cache dir mode %v, want 0700", m)
	}
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range entries {
		names[e.Name()] = true
		if m := fileMode(t, filepath.Join(cache, e.Name())); m != 0o600 {
			t.Errorf("%s mode %v, want 0600", e.Name(), m)
		}
	}
	if !names[domain] || !names["acme_account+key"] {
		t.Errorf("cache holds %v, want the account key and the certificate", names)
	}

	// Restart with the CA gone: the cached certificate is served.
	srv.Stop()
	cfg.Listen = addr
	cfg.TLS.ACME.DirectoryURL = "https://127.0.0.1:1/dir"
	cfg.TLS.ACME.HTTPListen = ""
	again := start(t, cfg)
	if got, err := tlstest.Serial(again.Addr().String(), domain, peb.Roots); err != nil || got != serial {
		t.Fatalf("after restart: serial %q, %v; want the cached %q", got, err, serial)
	}
}

func portOf(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }
