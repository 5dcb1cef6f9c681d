package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"petrel/client/daemon"
	"petrel/client/engine"
	"petrel/internal/tlstest"
	"petrel/proto/daemonpb"
	"petrel/server"
)

// `run` with --tls-cert/--tls-key serves TLS; the admin commands check
// the certificate against --ca-file, and say so when they cannot trust it.
func TestRunTLSFilesAndClientTrust(t *testing.T) {
	ca := tlstest.NewCA(t, "cli test CA")
	other := tlstest.NewCA(t, "another CA")
	certDir := t.TempDir()
	certFile, keyFile := ca.IssueFiles(t, certDir, "127.0.0.1")
	caFile := ca.WriteCA(t, certDir)
	otherFile := other.WriteCA(t, t.TempDir())
	dir := t.TempDir()
	srv := runServer(t, dir, "--tls-cert", certFile, "--tls-key", keyFile)
	base := "https://" + srv.addr
	for _, want := range []string{"TLS:               certificate " + certFile, "management (gRPC): " + base,
		"relay:             rels://" + srv.addr} {
		if !strings.Contains(srv.banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, srv.banner)
		}
	}
	tokenFile := filepath.Join(dir, server.AdminTokenFile)
	out, err := cli(t, "setup-key", "create", "--server", base, "--token-file", tokenFile, "--ca-file", caFile, "--name", "tls")
	if err != nil || !strings.HasPrefix(strings.TrimSpace(out), "psk_") {
		t.Fatalf("setup-key create over https: %q %v", out, err)
	}
	notTrusted := "list peers: server " + base + ": TLS certificate not trusted: x509: certificate signed by unknown authority (use --ca-file for a private CA)"
	for _, tc := range []struct {
		name  string
		args  []string
		msg   string
		usage bool
	}{
		{"system roots", []string{"peers", "list", "--server", base, "--token-file", tokenFile}, notTrusted, false},
		{"another CA", []string{"peers", "list", "--server", base, "--token-file", tokenFile, "--ca-file", otherFile}, notTrusted, false},
		{"wrong name", []string{"peers", "list", "--server", "https://localhost:" + portOf(srv.addr), "--token-file", tokenFile, "--ca-file", caFile},
			"TLS certificate not valid for this name", false},
		{"plaintext to TLS", []string{"peers", "list", "--server", "http://" + srv.addr, "--token-file", tokenFile}, "HTTP request to an HTTPS server", false},
		{"ca file for http", []string{"peers", "list", "--server", "http://" + srv.addr, "--token-file", tokenFile, "--ca-file", caFile}, "--ca-file is for an https://", true},
		{"ca file not PEM", []string{"peers", "list", "--server", base, "--token-file", tokenFile, "--ca-file", tokenFile}, "holds no PEM certificate", true},
		{"run cert without key", []string{"run", "--data-dir", t.TempDir(), "--tls-cert", certFile}, "--tls-cert and --tls-key go together", true},
		{"run acme flag without domain", []string{"run", "--data-dir", t.TempDir(), "--acme-email", "a@b.example"}, "--acme-email needs --acme-domain", true},
		{"run bad acme domain", []string{"run", "--data-dir", t.TempDir(), "--acme-domain", "localhost"}, "fully qualified", true},
		{"run plaintext public url with TLS", []string{"run", "--data-dir", t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile,
			"--public-url", "http://vpn.example.net"}, "want https://", true},
		{"run key of another cert", []string{"run", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--stun-listen", "127.0.0.1:0",
			"--tls-cert", certFile, "--tls-key", writeKey(t, ca)}, "private key does not match public key", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cli(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want error containing %q", err, tc.msg)
			}
			var ue usageError
			if errors.As(err, &ue) != tc.usage {
				t.Fatalf("usage error = %v, want %v (%v)", !tc.usage, tc.usage, err)
			}
		})
	}
}

func writeKey(t *testing.T, ca *tlstest.CA) string {
	_, key := ca.Issue(t, "127.0.0.1")
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func portOf(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }

// The whole HTTPS path against Pebble, Let's Encrypt's ACME test server,
// with real TLS-ALPN-01 validation on the server's one port: `run
// --acme-domain` obtains a certificate; admin commands and two agents
// (daemons with --ca-file, relay forced) reach management, signal and the
// relay over https:// and rels://; an agent without the CA is refused with
// the reason; the certificate is renewed before it expires and the new
// one is served.
func TestRunACMEEndToEnd(t *testing.T) {
	const domain = "vpn.petrel.test"
	dnsAddr := tlstest.StartDNS(t, map[string]netip.Addr{domain: netip.MustParseAddr("127.0.0.1")})
	tlstest.UseResolver(t, dnsAddr) // this process (CLI, agents) resolves the domain too
	port := tlstest.FreePort(t)
	// Certificates live 60 s and are renewed 50 s before they expire: the
	// first renewal comes 10 to 15 s after issuance.
	peb := tlstest.StartPebble(t, tlstest.PebbleOptions{TLSPort: port, HTTPPort: tlstest.FreePort(t), DNSServer: dnsAddr,
		Validity: 60 * time.Second})
	dir := t.TempDir()
	filesDir := t.TempDir()
	rootFile := peb.WriteRoot(t, filesDir)
	srv := runServer(t, dir, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--acme-domain", domain,
		"--acme-directory", peb.DirectoryURL, "--acme-ca-file", peb.DirectoryCA.WriteCA(t, filesDir),
		"--debug-acme-renew-before", "50s")
	base := fmt.Sprintf("https://%s:%d", domain, port)
	for _, want := range []string{"TLS:               ACME for " + domain, "management (gRPC): " + base,
		fmt.Sprintf("relay:             rels://%s:%d", domain, port)} {
		if !strings.Contains(srv.banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, srv.banner)
		}
	}
	var first string
	waitFor(t, "a certificate from Pebble", func() bool {
		first, _ = tlstest.Serial(srv.addr, domain, peb.Roots)
		return first != ""
	})
	issued := time.Now()

	// Admin commands over https.
	tokenFile := filepath.Join(dir, server.AdminTokenFile)
	out, err := cli(t, "setup-key", "create", "--server", base, "--token-file", tokenFile, "--ca-file", rootFile, "--name", "e2e", "--reusable")
	if err != nil || !strings.HasPrefix(strings.TrimSpace(out), "psk_") {
		t.Fatalf("setup-key create over https: %q %v", out, err)
	}
	setupKey := strings.TrimSpace(out)
	if _, err := cli(t, "peers", "list", "--server", base, "--token-file", tokenFile); err == nil ||
		!strings.Contains(err.Error(), "TLS certificate not trusted") || !strings.Contains(err.Error(), "--ca-file") {
		t.Fatalf("peers list without the CA: %v", err)
	}

	// Agents.
	resolv := filepath.Join(filesDir, "resolv.conf") // no nameserver beyond loopback for the agents' bypass resolver
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := func(name, caFile string) (daemonpb.DaemonClient, error) {
		cl := startAgent(t, daemon.Options{Netstack: true, SOCKS5Addr: "127.0.0.1:0", ICELoopback: true, ForceRelay: true,
			CAFile: caFile, Tune: func(c *engine.Config) { c.ResolvConf = resolv }})
		return cl, up(cl, &daemonpb.UpRequest{ManagementUrl: base, SetupKey: setupKey, Hostname: name, TimeoutMs: 30000})
	}
	if _, err := agent("stranger", ""); err == nil || !strings.Contains(err.Error(),
		"management server "+base+": TLS certificate not trusted: x509: certificate signed by unknown authority (use --ca-file for a private CA)") {
		t.Fatalf("up without the CA: %v", err)
	}
	a, err := agent("alpha", rootFile)
	if err != nil {
		t.Fatalf("up alpha: %v", err)
	}
	if _, err := agent("bravo", rootFile); err != nil {
		t.Fatalf("up bravo: %v", err)
	}
	var last string
	waitFor(t, "alpha connected to bravo through the relay", func() bool {
		st, err := a.Status(context.Background(), &daemonpb.StatusRequest{})
		if err != nil {
			return false
		}
		last = st.String()
		return st.ManagementConnected && st.SignalConnected && st.RelayConnected &&
			st.RelayHomeUrl == fmt.Sprintf("rels://%s:%d", domain, port) &&
			len(st.Peers) == 1 && st.Peers[0].Status == "connected" && st.Peers[0].Path == "relay"
	})
	t.Logf("alpha: %s", last)
	ping, err := a.Ping(context.Background(), &daemonpb.PingRequest{Peer: "bravo", Count: 1, TimeoutMs: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := ping.Recv(); err != nil || r.Error != "" || r.Path != "relay" {
		t.Fatalf("ping bravo: %v %v", r, err)
	}

	// Renewal: a new certificate, valid under Pebble's root, is served
	// before the first one is 30 s old (autocert's default, a third of the
	// lifetime before expiry, would be 40 s: the renew-before knob counts).
	var renewed string
	for renewed == "" || renewed == first {
		if time.Since(issued) > 30*time.Second {
			t.Fatalf("certificate %s not renewed", first)
		}
		time.Sleep(200 * time.Millisecond)
		renewed, err = tlstest.Serial(srv.addr, domain, peb.Roots)
		if err != nil {
			t.Fatalf("handshake during renewal: %v", err)
		}
	}
	if out, err := cli(t, "peers", "list", "--server", base, "--token-file", tokenFile, "--ca-file", rootFile); err != nil ||
		!strings.Contains(out, "alpha") || !strings.Contains(out, "bravo") {
		t.Fatalf("peers list after renewal: %q %v", out, err)
	}
}

// startAgent runs an agent daemon in-process with opts (its state dir
// added) and returns a client of its API; both end with the test.
func startAgent(t *testing.T, opts daemon.Options) daemonpb.DaemonClient {
	t.Helper()
	dir, err := os.MkdirTemp("", "pa") // short: a unix socket path
	if err != nil {
		t.Fatal(err)
	}
	opts.StateDir = dir
	opts.Logger = slog.New(slog.DiscardHandler)
	d := daemon.New(opts)
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("unix://"+d.Socket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); d.Stop(); os.RemoveAll(dir) })
	return daemonpb.NewDaemonClient(conn)
}

// up calls Up and reads its progress to the end.
func up(cl daemonpb.DaemonClient, req *daemonpb.UpRequest) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := cl.Up(ctx, req)
	if err != nil {
		return err
	}
	for {
		if _, err := s.Recv(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}
