package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cliErr runs petrel-server with args in-process and returns stdout and
// stderr. A `run` that starts when it should have failed is stopped after
// the deadline (and returns no error), so that the test fails, not hangs.
func cliErr(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb syncBuffer
	cmd := newRootCmd(&out, &errb)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

func writeConfig(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "server.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The file is the base, the command line overrides it, the environment
// overrides both.
func TestRunConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, `listen: "127.0.0.1:1"
public-url: http://file.example.net:8080
relay-url: [rel://file-relay.example.net:80]
log-level: debug
`)
	t.Setenv("PETREL_PUBLIC_URL", "http://env.example.net:9000")
	t.Setenv("PETREL_SETUP_KEY", "psk_agents_own") // the agent's: ignored
	srv := runServer(t, dir, "--config", path)
	for _, want := range []string{"management (gRPC): http://env.example.net:9000", "relays advertised: rel://file-relay.example.net:80"} {
		if !strings.Contains(srv.banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, srv.banner)
		}
	}
	if strings.HasSuffix(srv.addr, ":1") {
		t.Errorf("the file's listen beat the command line's: %s", srv.addr)
	}
}

func TestConfigCheckOK(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "not-yet")
	path := writeConfig(t, "data-dir: "+dataDir+"\nlisten: \":443\"\nacme-domain: vpn.example.net\nrelay-url: [rels://a.example.net:443]\n")
	t.Setenv("PETREL_STORE", "postgres://petrel:hunter2@db.example.net/petrel?sslmode=require&password=hunter3")
	t.Setenv("PETREL_LISTNE", ":1")
	out, stderr, err := cliErr(t, "config", "check", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{path + ": ok\n", "data-dir:", dataDir, "(" + path + ":1)", "acme-domain:", "vpn.example.net",
		"store:", "postgres://petrel:xxxxx@db.example.net/petrel?sslmode=require&password=xxxxx", "($PETREL_STORE)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hunter") || strings.Contains(stderr, "hunter") {
		t.Errorf("password shown:\n%s%s", out, stderr)
	}
	if strings.Contains(out, "stun-listen") {
		t.Errorf("a default listed:\n%s", out)
	}
	if !strings.Contains(stderr, "PETREL_LISTNE ignored: no such setting (did you mean PETREL_LISTEN?)") {
		t.Errorf("no warning for PETREL_LISTNE: %q", stderr)
	}
	// Nothing was started or written.
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("config check touched the data dir: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := writeConfig(t, `data-dir: `+dir+`
listne: ":443"
listen: "8080"
max-conns-per-source: lots
relay-url:
  host: x
data-dir: again
`)
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	good := writeConfig(t, "data-dir: "+dir+"\n")
	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		want  []string
		usage bool
	}{
		{"run unknown key and the flags' problems", nil, []string{"run", "--config", bad, "--components", "dns"}, []string{
			bad + `:2: unknown key "listne" (did you mean "listen"?)`,
			bad + `:4: key "max-conns-per-source": "lots" is not a valid int`,
			bad + `:6: key "relay-url": want a value or a list of values, not a mapping`,
			bad + `:7: duplicate key "data-dir" (first at line 1)`,
			`--listen "8080": want HOST:PORT`, "(--listen from " + bad + ":3)",
			`unknown component "dns"`,
		}, true},
		{"check reports every problem", nil, []string{"config", "check", bad}, []string{
			bad + `:2: unknown key "listne"`, bad + `:4:`, bad + `:6:`, bad + `:7:`, "(--listen from " + bad + ":3)"}, true},
		{"run unreadable file", nil, []string{"run", "--config", missing}, []string{"unreadable config file", "missing.yaml"}, false},
		{"check unreadable file", nil, []string{"config", "check", missing}, []string{"unreadable config file"}, false},
		{"check no file", nil, []string{"config", "check"}, []string{"config check takes one FILE"}, true},
		{"check two files", nil, []string{"config", "check", good, good}, []string{"config check takes one FILE"}, true},
		{"env bad value", []string{"PETREL_MAX_CONNS_PER_SOURCE", "many"}, []string{"config", "check", good},
			[]string{`environment: PETREL_MAX_CONNS_PER_SOURCE: "many" is not a valid int`}, true},
		{"env value fails validation", []string{"PETREL_LISTEN", "nowhere"}, []string{"run", "--config", good},
			[]string{`--listen "nowhere"`, "(--listen from $PETREL_LISTEN)"}, true},
		{"env overrides the command line", []string{"PETREL_LOG_FORMAT", "xml"}, []string{"run", "--data-dir", dir, "--log-format", "json"},
			[]string{`--log-format "xml": want text or json (--log-format from $PETREL_LOG_FORMAT)`}, true},
		{"run bad log format", nil, []string{"run", "--data-dir", dir, "--log-format", "logfmt"}, []string{`--log-format "logfmt": want text or json`}, true},
		{"config key in the file", nil, []string{"config", "check", writeConfig(t, "config: /etc/other.yaml\n")}, []string{`:1: unknown key "config"`}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != nil {
				t.Setenv(tc.env[0], tc.env[1])
			}
			out, _, err := cliErr(t, tc.args...)
			if err == nil {
				t.Fatalf("no error; stdout %q", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			var ue usageError
			if errors.As(err, &ue) != tc.usage || exitCode(err) == 0 {
				t.Fatalf("usage error = %v, want %v (exit %d)", !tc.usage, tc.usage, exitCode(err))
			}
			if strings.Contains(out, ": ok") {
				t.Fatalf("said ok: %q", out)
			}
		})
	}
}

func TestLogFormatJSON(t *testing.T) {
	run, f := newRunCmdFlags()
	if err := run.Flags().Parse([]string{"--data-dir", t.TempDir(), "--log-format", "json"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, log, err := f.server(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello", "k", "v")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["msg"] != "hello" || rec["k"] != "v" || rec["level"] != "INFO" {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:pw@db/x":                       "postgres://u:xxxxx@db/x",
		"postgres://u:p#w/d@db:5432/x?sslmode=off":   "postgres://u:xxxxx@db:5432/x?sslmode=off",
		"postgres://u@db/x?password=pw&sslmode=off":  "postgres://u@db/x?password=xxxxx&sslmode=off",
		"postgresql://db/x?sslpassword=a&Password=b": "postgresql://db/x?sslpassword=xxxxx&Password=xxxxx",
		"postgres://u:p@ss@db/x":                     "postgres://u:xxxxx@db/x",
		"sqlite:///var/lib/p.db":                     "sqlite:///var/lib/p.db",
		":443":                                       ":443",
		"/etc/petrel/key.pem":                        "/etc/petrel/key.pem",
		"https://vpn.example.net":                    "https://vpn.example.net",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
