package cfgfile

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// testFlags is a command's flags of every kind a setting can be.
type testFlags struct {
	fs       *pflag.FlagSet
	dataDir  string
	listen   string
	relays   []string
	conns    int
	renew    time.Duration
	verbose  bool
	config   string
	override string
	ports    []int
}

func newTestFlags(t *testing.T, args ...string) *testFlags {
	t.Helper()
	f := &testFlags{fs: pflag.NewFlagSet("run", pflag.ContinueOnError)}
	f.fs.StringVar(&f.dataDir, "data-dir", "", "")
	f.fs.StringVar(&f.listen, "listen", ":8080", "")
	f.fs.StringArrayVar(&f.relays, "relay-url", []string{"rel://default"}, "")
	f.fs.IntVar(&f.conns, "max-conns", 64, "")
	f.fs.DurationVar(&f.renew, "debug-renew", 0, "")
	_ = f.fs.MarkHidden("debug-renew")
	f.fs.BoolVar(&f.verbose, "verbose", false, "")
	f.fs.StringVar(&f.override, "override", "", "")
	f.fs.IntSliceVar(&f.ports, "ports", []int{1}, "")
	f.fs.StringVar(&f.config, "config", "", "")
	if err := f.fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f
}

func opts(env ...string) Options {
	return Options{EnvPrefix: "PETREL_", Environ: env, Skip: func(fl *pflag.Flag) bool { return fl.Name == "config" }}
}

func apply(t *testing.T, f *testFlags, src string, o Options) (*Result, error) {
	t.Helper()
	file, err := Parse("s.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return Apply(f.fs, file, o)
}

func TestApplyFile(t *testing.T) {
	f := newTestFlags(t)
	res, err := apply(t, f, `data-dir: /d
relay-url: [rel://a, rel://b]
max-conns: 10
debug-renew: 1h
verbose: true
override:
`, opts())
	if err != nil {
		t.Fatal(err)
	}
	if f.dataDir != "/d" || f.listen != ":8080" || !reflect.DeepEqual(f.relays, []string{"rel://a", "rel://b"}) ||
		f.conns != 10 || f.renew != time.Hour || !f.verbose || f.override != "" {
		t.Fatalf("flags: %+v", f)
	}
	want := map[string]string{"data-dir": "s.yaml:1", "listen": "default", "relay-url": "s.yaml:2", "max-conns": "s.yaml:3",
		"debug-renew": "s.yaml:4", "verbose": "s.yaml:5", "override": "default", "ports": "default"}
	got := map[string]string{}
	for k, o := range res.Origins {
		got[k] = o.String()
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("origins %v, want %v", got, want)
	}
	if !f.fs.Changed("data-dir") || !f.fs.Changed("relay-url") || f.fs.Changed("listen") {
		t.Fatal("Changed not kept in step")
	}
}

// A single value is a list of one for a repeatable flag.
func TestApplyScalarForList(t *testing.T) {
	f := newTestFlags(t)
	if _, err := apply(t, f, "relay-url: rel://one\n", opts()); err != nil || !reflect.DeepEqual(f.relays, []string{"rel://one"}) {
		t.Fatalf("%v %v", f.relays, err)
	}
}

func TestPrecedence(t *testing.T) {
	f := newTestFlags(t, "--listen", ":1", "--relay-url", "rel://cli", "--max-conns", "5")
	res, err := apply(t, f, "listen: :2\nrelay-url: [rel://file]\ndata-dir: /file\nmax-conns: 7\n",
		opts("PETREL_MAX_CONNS=9", "PETREL_RELAY_URL=rel://env1, rel://env2", "PETREL_VERBOSE=true", "PETREL_DATA_DIR="))
	if err != nil {
		t.Fatal(err)
	}
	// Command line over file; environment over both; an empty variable
	// counts as unset.
	if f.listen != ":1" || f.dataDir != "/file" || f.conns != 9 || !f.verbose ||
		!reflect.DeepEqual(f.relays, []string{"rel://env1", "rel://env2"}) {
		t.Fatalf("flags: %+v", f)
	}
	for k, want := range map[string]string{"listen": "command line", "data-dir": "s.yaml:3", "max-conns": "$PETREL_MAX_CONNS",
		"relay-url": "$PETREL_RELAY_URL", "verbose": "$PETREL_VERBOSE"} {
		if got := res.Origins[k].String(); got != want {
			t.Errorf("origin of %s: %s, want %s", k, got, want)
		}
	}
}

// The file is checked whole, even where the command line overrides it.
func TestOverriddenValueStillChecked(t *testing.T) {
	f := newTestFlags(t, "--max-conns", "5")
	_, err := apply(t, f, "max-conns: lots\n", opts())
	if err == nil || !strings.Contains(err.Error(), `s.yaml:1: key "max-conns": "lots" is not a valid int`) {
		t.Fatalf("got %v", err)
	}
	if f.conns != 5 {
		t.Fatalf("command line value lost: %d", f.conns)
	}
}

func TestApplyProblems(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		env       []string
		want      string
	}{
		{"unknown key near", "listne: :1\n", nil, `s.yaml:1: unknown key "listne" (did you mean "listen"?)`},
		{"unknown key underscore", "data_dir: /d\n", nil, `unknown key "data_dir" (did you mean "data-dir"?)`},
		{"unknown key dashes", "--listen: :1\n", nil, `unknown key "--listen" (did you mean "listen"?)`},
		{"unknown key far", "colour: blue\n", nil, `s.yaml:1: unknown key "colour"`},
		{"hidden not suggested", "debug-renw: 1h\n", nil, `s.yaml:1: unknown key "debug-renw"`},
		{"config is no key", "config: other.yaml\n", nil, `s.yaml:1: unknown key "config"`},
		{"list for scalar", "listen: [a, b]\n", nil, `s.yaml:1: key "listen": want a single value, not a list`},
		{"one-item list for scalar", "listen: [a]\n", nil, `key "listen": want a single value, not a list`},
		{"bad int", "max-conns: 1.5\n", nil, `s.yaml:1: key "max-conns": "1.5" is not a valid int`},
		{"bad duration", "debug-renew: 5\n", nil, `key "debug-renew": "5" is not a valid duration (e.g. 90s, 10m, 24h)`},
		{"bad bool", "verbose: yes\n", nil, `key "verbose": "yes" is not a valid bool (true or false)`},
		{"bad env int", "", []string{"PETREL_MAX_CONNS=many"}, `environment: PETREL_MAX_CONNS: "many" is not a valid int`},
		{"bad int list", "ports: [2, x]\n", nil, `s.yaml:1: key "ports": bad list ["2" "x"]`},
		{"bad env int list", "", []string{"PETREL_PORTS=3,y"}, `environment: PETREL_PORTS: bad list ["3" "y"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFlags(t)
			_, err := apply(t, f, tc.src, opts(tc.env...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(tc.want, "did you mean") != strings.Contains(err.Error(), "did you mean") {
				t.Fatalf("suggestion: %v", err)
			}
			// A rejected value changes nothing.
			if f.listen != ":8080" || f.conns != 64 || f.renew != 0 || f.verbose || f.dataDir != "" || !reflect.DeepEqual(f.ports, []int{1}) {
				t.Fatalf("flags changed: %+v", f)
			}
		})
	}
}

func TestEnvWarnings(t *testing.T) {
	f := newTestFlags(t)
	res, err := Apply(f.fs, nil, opts("PETREL_LISTNE=:1", "PETREL_SETUP_KEY=psk_x", "PETREL_CONFIG=/x", "PETREL_Listen=:2",
		"PETREL_TEST_POSTGRES_DSN=postgres://x", "OTHER_LISTEN=:3", "PETREL_DEBUG_RENEW=2h"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"environment variable PETREL_LISTNE ignored: no such setting (did you mean PETREL_LISTEN?)",
		"environment variable PETREL_Listen ignored: no such setting (did you mean PETREL_LISTEN?)",
	}
	if !reflect.DeepEqual(res.Warnings, want) {
		t.Fatalf("warnings:\n%q\nwant\n%q", res.Warnings, want)
	}
	if f.listen != ":8080" || f.renew != 2*time.Hour {
		t.Fatalf("flags: %+v", f)
	}
}

// Every problem is reported, in line order, then the environment's.
func TestLoadReportsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.yaml")
	src := "listen: [a]\nlistne: x\nmax-conns: many\nlisten: again\ndata-dir: /ok\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newTestFlags(t)
	_, err := Load(f.fs, path, opts("PETREL_VERBOSE=maybe"))
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		path + `:1: key "listen": want a single value, not a list`,
		path + `:2: unknown key "listne" (did you mean "listen"?)`,
		path + `:3: key "max-conns": "many" is not a valid int`,
		path + `:4: duplicate key "listen" (first at line 1)`,
		`environment: PETREL_VERBOSE: "maybe" is not a valid bool (true or false)`,
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Fatalf("problems:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if f.dataDir != "/ok" {
		t.Fatal("sound entry not applied")
	}
}

func TestLoadUnreadableChangesNothing(t *testing.T) {
	f := newTestFlags(t)
	_, err := Load(f.fs, filepath.Join(t.TempDir(), "missing.yaml"), opts("PETREL_LISTEN=:1"))
	if !errors.Is(err, ErrUnreadable) {
		t.Fatalf("got %v", err)
	}
	if f.listen != ":8080" {
		t.Fatal("environment applied despite the unreadable file")
	}
}

func TestLoadWithoutFile(t *testing.T) {
	f := newTestFlags(t)
	if _, err := Load(f.fs, "", opts("PETREL_LISTEN=:1")); err != nil || f.listen != ":1" {
		t.Fatalf("%v %q", err, f.listen)
	}
}

func TestClosest(t *testing.T) {
	names := []string{"listen", "stun-listen", "data-dir", "store", "acme-domain"}
	for key, want := range map[string]string{
		"listne": "listen", "Listen": "listen", "data_dir": "data-dir", "datadir": "data-dir", "stor": "store",
		"acme-domains": "acme-domain", "stun_listen": "stun-listen", "sto": "", "colour": "", "x": "", "tls-cert": "",
	} {
		if got := closest(key, names); got != want {
			t.Errorf("closest(%q) = %q, want %q", key, got, want)
		}
	}
}
