package main

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"petrel/internal/cfgfile"
)

// exampleConfig is the annotated example shipped as /etc/petrel/server.yaml.
const exampleConfig = "../../packaging/petrel-server.yaml"

// commentedKey is a setting left at its default in the example:
// "# key: value" (descriptions are prose that never starts "word:").
var commentedKey = regexp.MustCompile(`^# ([a-z][a-z0-9-]*):(?: |$)`)

// The example is a valid config that `config check` accepts as it is.
func TestExampleConfigChecks(t *testing.T) {
	var out bytes.Buffer
	if err := checkConfig(exampleConfig, nil, &out, io.Discard); err != nil {
		t.Fatalf("config check of the example: %v", err)
	}
	if !strings.HasPrefix(out.String(), exampleConfig+": ok\n") || !strings.Contains(out.String(), "/var/lib/petrel-server") {
		t.Fatalf("output:\n%s", out.String())
	}
}

// Every visible flag of `run` is in the example exactly once, set or
// commented out, below a description that gives its default; hidden
// (debug) flags are not; and each commented-out value is valid when
// uncommented. So a flag added to `run` fails this test until it is
// documented here.
func TestExampleConfigCoversEveryFlag(t *testing.T) {
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	run, _ := newRunCmdFlags()
	flags := map[string]*pflag.Flag{}
	run.Flags().VisitAll(func(fl *pflag.Flag) {
		if !notSettings[fl.Name] {
			flags[fl.Name] = fl
		}
	})
	activeKey := regexp.MustCompile(`^([a-z][a-z0-9-]*):`)
	seen := map[string]int{}
	desc := ""
	var uncommented []string
	for i, line := range strings.Split(string(data), "\n") {
		key := ""
		if m := commentedKey.FindStringSubmatch(line); m != nil {
			key = m[1]
			line = strings.TrimPrefix(line, "# ")
		} else if m := activeKey.FindStringSubmatch(line); m != nil {
			key = m[1]
		}
		uncommented = append(uncommented, line)
		switch {
		case key != "":
			fl, ok := flags[key]
			switch {
			case !ok:
				t.Errorf("line %d: %q is no flag of run", i+1, key)
			case fl.Hidden:
				t.Errorf("line %d: hidden flag %q in the example", i+1, key)
			case !strings.Contains(desc, "Default") && !strings.Contains(desc, "Required"):
				t.Errorf("line %d: %q has no description giving its default above it", i+1, key)
			}
			if seen[key] != 0 {
				t.Errorf("line %d: %q again (first at line %d)", i+1, key, seen[key])
			} else {
				seen[key] = i + 1
			}
		case strings.HasPrefix(line, "# "):
			desc += line
		default: // blank line, section heading: the next key needs its own description
			desc = ""
		}
	}
	for name, fl := range flags {
		if !fl.Hidden && seen[name] == 0 {
			t.Errorf("flag --%s of run is missing from %s", name, exampleConfig)
		}
	}
	// Everything uncommented at once: each value fits its flag (the
	// combination need not be a valid server, e.g. tls-cert with acme-domain).
	f, err := cfgfile.Parse("uncommented", []byte(strings.Join(uncommented, "\n")))
	if err == nil {
		run, _ := newRunCmdFlags()
		_, err = cfgfile.Apply(run.Flags(), f, cfgfile.Options{Skip: func(fl *pflag.Flag) bool { return notSettings[fl.Name] }})
	}
	if err != nil {
		t.Errorf("with every setting uncommented: %v", err)
	}
}
