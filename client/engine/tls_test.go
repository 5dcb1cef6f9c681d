package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"petrel/client/engine"
	"petrel/internal/keys"
	"petrel/internal/tlstest"
	"petrel/management"
	"petrel/server"
)

// An agent reaches a TLS control plane whose certificate its RootCAs
// trust: management and signal over https, the relay over rels://. One
// without them fails at once with the reason, not after its deadline as
// for a server that is down.
func TestStartOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "engine test CA")
	certFile, keyFile := ca.IssueFiles(t, t.TempDir(), "127.0.0.1")
	srv, err := server.New(server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", STUNListen: "127.0.0.1:0",
		Logger: testLogger(t), TLS: server.TLSConfig{CertFile: certFile, KeyFile: keyFile}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	_, setupKey, err := srv.Management().CreateSetupKey(ctx, srv.Management().Accounts()[0],
		management.SetupKeyInput{Name: "tls", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	newEngine := func(name string, trust bool) *engine.Engine {
		k, _ := keys.NewPrivate()
		cfg := engine.Config{ManagementURL: srv.PublicURL(), SetupKey: setupKey, Hostname: name, Key: k,
			Netstack: true, SOCKS5Addr: "127.0.0.1:0", ICELoopback: true, Logger: testLogger(t).With("agent", name)}
		if trust {
			cfg.RootCAs = ca.Pool()
		}
		e, err := engine.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}

	untrusting := newEngine("untrusting", false)
	start := time.Now()
	err = untrusting.Start(ctx)
	untrusting.Stop()
	want := "management server " + srv.PublicURL() + ": TLS certificate not trusted: x509: certificate signed by unknown authority (use --ca-file for a private CA)"
	if err == nil || err.Error() != want {
		t.Fatalf("start without the CA: %v\nwant: %s", err, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the certificate error took %v: retried like an outage", d)
	}

	e := newEngine("trusting", true)
	if err := e.Start(ctx); err != nil {
		t.Fatalf("start with the CA: %v", err)
	}
	defer e.Stop()
	waitFor(t, "management, signal and relay over TLS", 30*time.Second, func() (bool, string) {
		st := e.Status()
		return st.ManagementConnected && st.SignalConnected && st.RelayConnected && strings.HasPrefix(st.RelayHomeUrl, "rels://"),
			st.String()
	})
}
