package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"petrel/client/daemon"
	"petrel/internal/keys"
	"petrel/relay/auth"
	"petrel/server"
)

// checkBundle runs `petrel debug bundle` against a running agent whose
// daemon.log has been made to leak every kind of secret, and greps the
// unpacked archive for them (the secret scan).
func checkBundle(t *testing.T, bin string, srv *server.Server, dir, setupKey string) {
	t.Helper()
	keyText, err := os.ReadFile(filepath.Join(dir, daemon.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(keyText)))
	if err != nil {
		t.Fatal(err)
	}
	relaySecret, err := os.ReadFile(filepath.Join(filepath.Dir(srv.TokenFile()), server.RelaySecretFile))
	if err != nil {
		t.Fatal(err)
	}
	rawSecret, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(relaySecret)))
	var peer keys.Public
	copy(peer[:], priv) // any 32 bytes: the token only has to be well formed
	relayTok := auth.Mint(rawSecret, peer, time.Now().Add(time.Hour))
	secrets := map[string]string{
		"private key": strings.TrimSpace(string(keyText)), "private key (hex)": hex.EncodeToString(priv),
		"setup key": setupKey, "admin token": srv.AdminToken(), "relay token": relayTok,
	}
	// A daemon.log that leaked them all (the daemon itself never logs them:
	// client/daemon's scrub test), so the bundle's redaction is what is tested.
	leak := "time=x level=DEBUG msg=leak key=" + secrets["private key"] + " hex " + secrets["private key (hex)"] +
		" login " + setupKey + " Authorization: Bearer " + srv.AdminToken() + " dial rels://r/relay?token=" + relayTok + "\n"
	lf, err := os.OpenFile(filepath.Join(dir, daemon.LogFile), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	lf.WriteString(leak)
	lf.Close()

	archive := filepath.Join(t.TempDir(), "b.tar.gz")
	out, code := run(t, bin, "debug", "bundle", "--state-dir", dir, "-o", archive)
	if code != 0 || !strings.Contains(out, "wrote "+archive) || !strings.Contains(out, "secret(s) removed") {
		t.Fatalf("debug bundle: exit %d\n%s", code, out)
	}
	if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive: %v %v", fi, err)
	}
	// An output path that is not a regular file (a device, /dev/stdout, a
	// symlink) is written through, never replaced: here a symlink, which
	// stands for /dev/null without risking the real one.
	target := filepath.Join(t.TempDir(), "target")
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(target, nil, 0o600)
	if out, code := run(t, bin, "debug", "bundle", "--state-dir", dir, "-o", link); code != 0 {
		t.Fatalf("bundle through a symlink: exit %d\n%s", code, out)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v %v", fi, err)
	}
	if fi, err := os.Stat(target); err != nil || fi.Size() == 0 {
		t.Fatalf("nothing written through the symlink: %v %v", fi, err)
	}
	files := untar(t, archive)
	for _, want := range []string{"version.txt", "daemon/status.json", "daemon/dns-status.json", "daemon/recent.log",
		"state/daemon.log", "state/config.json", "host/ip-route.txt", "host/ip-rule.txt", "README.txt"} {
		if _, ok := files[want]; !ok {
			t.Errorf("bundle lacks %s (has %v)", want, keysOf(files))
		}
	}
	if !strings.Contains(files["daemon/status.json"], `"state": "connected"`) {
		t.Errorf("status.json: %.300s", files["daemon/status.json"])
	}
	if !strings.Contains(files["daemon/recent.log"], "level=INFO") {
		t.Errorf("recent.log holds no log lines: %.300s", files["daemon/recent.log"])
	}
	if !strings.Contains(files["state/daemon.log"], "msg=leak") {
		t.Errorf("the leaked line is not in the bundle at all: %.300s", files["state/daemon.log"])
	}
	for name, body := range files {
		for what, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("%s in the bundle holds the %s", name, what)
			}
		}
	}
}

func untar(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		_, rest, _ := strings.Cut(h.Name, "/") // drop the top directory
		files[rest] = string(b)
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
