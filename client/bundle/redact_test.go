package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"petrel/internal/keys"
	"petrel/relay/auth"
)

func TestRedactorRemovesEverySecretForm(t *testing.T) {
	priv := make([]byte, 32)
	rand.Read(priv)
	privB64 := base64.StdEncoding.EncodeToString(priv)
	secret := make([]byte, 32)
	rand.Read(secret)
	var peer keys.Public
	rand.Read(peer[:])
	relayTok := auth.Mint(secret, peer, time.Now().Add(time.Hour))
	setup := "psk_" + strings.Repeat("abcd", 8)
	admin := "ptok_" + strings.Repeat("wxyz", 13)

	var r Redactor
	r.AddSecret(privB64 + "\n")
	cases := map[string]string{
		"private key (base64)":      "key loaded: " + privB64 + " ok",
		"private key (hex)":         "raw=" + hex.EncodeToString(priv),
		"private key (url base64)":  "k " + base64.RawURLEncoding.EncodeToString(priv) + ".",
		"setup key":                 "login with " + setup + " failed",
		"admin token":               "Authorization: Bearer " + admin,
		"relay token":               "dial rels://r.example/relay?token=" + relayTok + "&x=1",
		"labelled secret":           `level=INFO msg=x client_secret=hunter2hunter2`,
		"labelled secret (JSON)":    `{"password": "correct horse", "name": "a"}`,
		"labelled private key":      `"private_key":"abc123def456"`,
		"relay token in a sentence": "token " + relayTok,
		"relay token touching text": "relay: " + relayTok + "x and -" + relayTok,
		"escaped quote (text)":      `password="hunter2 \"q\" tail" next=1`,
		"escaped quote (JSON)":      `{"client_secret":"ab\"cd efgh"}`,
		"key after the keyword":     `secret_key=s3cr3tvalue api_key=k3yvalue1 preshared_key=pskvalue99`,
		"numeric password":          `password=12345678`,
	}
	leaks := map[string]string{
		"private key (base64)": privB64, "private key (hex)": hex.EncodeToString(priv),
		"private key (url base64)": base64.RawURLEncoding.EncodeToString(priv), "setup key": setup,
		"admin token": admin, "relay token": relayTok, "labelled secret": "hunter2hunter2",
		"labelled secret (JSON)": "correct horse", "labelled private key": "abc123def456",
		"relay token in a sentence": relayTok, "relay token touching text": relayTok,
		"escaped quote (text)": "tail", "escaped quote (JSON)": "efgh", "key after the keyword": "value",
		"numeric password": "12345678",
	}
	for name, in := range cases {
		out := string(r.Redact([]byte(in)))
		if strings.Contains(out, leaks[name]) || !strings.Contains(out, Redacted) {
			t.Errorf("%s: %q -> %q", name, in, out)
		}
	}
	if r.Count() < len(cases) {
		t.Errorf("count %d < %d", r.Count(), len(cases))
	}
}

func TestRedactorKeepsOrdinaryText(t *testing.T) {
	var r Redactor
	r.AddSecret("short") // too short to be matched
	var pub keys.Public
	rand.Read(pub[:])
	in := strings.Join([]string{
		`peer bravo public_key=` + base64.StdEncoding.EncodeToString(pub[:]) + ` path=direct`,
		`"peers": 3, "setup_key_file": "/etc/petrel/key", "has_secret": true`,
		`a short word and 100.64.0.2 dev petrel0 table 7 proto static`,
		strings.Repeat("a", auth.TokenLen), // right length, does not parse as a relay token
	}, "\n")
	if out := string(r.Redact([]byte(in))); out != in {
		t.Fatalf("ordinary text changed:\n%s\n->\n%s", in, out)
	}
}

func TestWriteArchive(t *testing.T) {
	var r Redactor
	r.AddSecret("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=")
	var buf bytes.Buffer
	sum, err := Write(&buf, "b", []File{
		{Name: "z.txt", Data: []byte("key c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI= here")},
		{Name: "a/missing.txt", Err: errors.New("no such file")},
		{Name: "partial.txt", Data: []byte("half"), Err: errors.New("timed out")},
	}, &r, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := readArchive(t, buf.Bytes())
	if sum.Files != 2 || sum.Errors != 2 || sum.Redacted != 1 {
		t.Errorf("summary %+v", sum)
	}
	if got["b/z.txt"] != "key "+Redacted+" here" || got["b/partial.txt"] != "half" {
		t.Errorf("files: %q", got)
	}
	if _, ok := got["b/a/missing.txt"]; ok {
		t.Error("a file that could not be read is in the archive")
	}
	if e := got["b/errors.txt"]; !strings.Contains(e, "a/missing.txt: no such file") || !strings.Contains(e, "partial.txt: timed out") {
		t.Errorf("errors.txt: %q", e)
	}
	if !strings.Contains(got["b/README.txt"], "z.txt") {
		t.Errorf("README.txt: %q", got["b/README.txt"])
	}
}

func readArchive(t *testing.T, b []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Mode != 0o600 {
			t.Errorf("%s: mode %o", h.Name, h.Mode)
		}
		d, _ := io.ReadAll(tr)
		out[h.Name] = string(d)
	}
}
