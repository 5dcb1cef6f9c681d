package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"petrel/internal/tlstest"
	"petrel/management"
	"petrel/server"
)

// `petrel up` against a TLS control plane with a private CA: without
// --ca-file the certificate error is what the user reads; with it (passed
// on to the daemon it starts) the agent connects.
func TestCLIUpHTTPSCAFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	ca := tlstest.NewCA(t, "agent test CA")
	certDir := t.TempDir()
	certFile, keyFile := ca.IssueFiles(t, certDir, "127.0.0.1")
	caFile := ca.WriteCA(t, certDir)
	srv, err := server.New(server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", STUNListen: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler), TLS: server.TLSConfig{CertFile: certFile, KeyFile: keyFile}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	_, key, err := srv.Management().CreateSetupKey(ctx, srv.Management().Accounts()[0],
		management.SetupKeyInput{Name: "cli", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	url := srv.PublicURL()
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("public URL %s", url)
	}
	dir := stateDir(t)
	upArgs := []string{"up", "--netstack", "--state-dir", dir, "--management-url", url, "--setup-key", key, "--timeout", "20s"}

	start := time.Now()
	out, code := run(t, bin, upArgs...)
	if code == 0 || !strings.Contains(out, "management server "+url+": TLS certificate not trusted") ||
		!strings.Contains(out, "(use --ca-file for a private CA)") {
		t.Fatalf("up without --ca-file: exit %d\n%s", code, out)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("the certificate error took %v", d)
	}
	if out, code := run(t, bin, append(upArgs, "--ca-file", filepath.Join(certDir, "nope.pem"))...); code != 2 || !strings.Contains(out, "--ca-file") {
		t.Fatalf("up with a missing --ca-file: exit %d\n%s", code, out)
	}

	out, code = run(t, bin, append(upArgs, "--ca-file", caFile)...)
	if code != 0 {
		t.Fatalf("up with --ca-file: exit %d\n%s", code, out)
	}
	defer run(t, bin, "down", "--state-dir", dir)
	out, _ = run(t, bin, "status", "--json", "--state-dir", dir)
	var st struct {
		Management struct {
			URL       string `json:"url"`
			Connected bool   `json:"connected"`
		} `json:"management"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Management.URL != url || !st.Management.Connected {
		t.Fatalf("status: %v\n%s", err, out)
	}
}
