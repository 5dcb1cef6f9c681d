package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"petrel/internal/keys"
	"petrel/management"
	"petrel/proto/managementpb"
)

// hostile holds the strings an agent (or a compromised or older server)
// could put in a peer's name, FQDN and groups: terminal escapes that clear
// the screen or retitle it, a newline forging a second row, bidi overrides
// that reverse what follows.
var hostile = struct{ name, fqdn, group string }{
	name:  "evil\x1b[2J\x1b]0;pwned\x07\nfake-peer  100.64.0.99  ok",
	fqdn:  "a\u202egnp.exe\u2066.mesh.petrel",
	group: "ops\r\x1b[31mred",
}

// `peers list` prints every cell escaped, one line per peer, whatever the
// server sends.
func TestPeersListEscapesCells(t *testing.T) {
	body := `[` +
		`{"id":"p1","name":` + jsonString(hostile.name) + `,"ip":"100.64.0.1","fqdn":` + jsonString(hostile.fqdn) +
		`,"connected":true,"groups":[{"name":` + jsonString(hostile.group) + `}]},` +
		`{"id":"p2","name":"plain","ip":"100.64.0.2","fqdn":"plain.mesh.petrel","connected":false,"groups":[]}` +
		`]`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "GET" || r.URL.Path != "/api/peers" {
			http.Error(w, `{"error":"unexpected request","code":"not_found"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte("ptok_test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := (&admin{base: srv.URL, tokenFile: tokenFile}).ok(t, "peers", "list")

	if strings.ContainsAny(out, "\x1b\x07\r\u202e\u2066") {
		t.Fatalf("peers list printed control or bidi characters:\n%q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("peers list: %d lines, want a header and one row per peer (2):\n%q", len(lines), out)
	}
	for _, want := range []string{`evil\x1b[2J\x1b]0;pwned\x07\nfake-peer`, `a\u202egnp.exe\u2066.mesh.petrel`, `ops\r\x1b[31mred`} {
		if !strings.Contains(lines[1], want) {
			t.Fatalf("row of p1 does not show %s escaped:\n%q", want, lines[1])
		}
	}
	if !strings.HasPrefix(lines[1], `evil\x1b`) || !strings.HasSuffix(lines[1], " p1") || !strings.HasPrefix(lines[2], "plain ") || !strings.HasSuffix(lines[2], " p2") {
		t.Fatalf("rows are not one per peer:\n%s", out)
	}
}

// The same through a real management server: an agent's hostname with
// escapes is stored cleaned and printed on one row.
func TestPeersListOfRealServerOneRowPerPeer(t *testing.T) {
	a := startUserAdmin(t)
	ctx := context.Background()
	_, setupKey, err := a.svc.CreateSetupKey(ctx, a.svc.Accounts()[0], management.SetupKeyInput{Name: "t", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{hostile.name, "plain"} {
		k, err := keys.NewPrivate()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.svc.Login(ctx, k.Public(), &managementpb.LoginRequest{SetupKey: setupKey, Hostname: host,
			Meta: &managementpb.PeerMeta{Hostname: host, Os: "linux\u202e\x1b[0m"}}); err != nil {
			t.Fatal(err)
		}
	}
	out := a.ok(t, "peers", "list")
	if strings.ContainsAny(out, "\x1b\x07\r\u202e") {
		t.Fatalf("peers list printed control or bidi characters:\n%q", out)
	}
	if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != 3 {
		t.Fatalf("peers list: %d lines, want a header and 2 rows:\n%q", len(lines), out)
	}
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
