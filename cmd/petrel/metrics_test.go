package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func parseDaemonFlags(t *testing.T, args ...string) (*daemonFlags, error) {
	t.Helper()
	f := &daemonFlags{}
	cmd := &cobra.Command{Use: "x"}
	f.register(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		return f, err
	}
	return f, cmd.PreRunE(cmd, nil)
}

// --metrics-listen and --pprof reach the daemon's options, and `petrel up`
// passes them to the daemon it spawns (args parses back to the same).
func TestMetricsFlags(t *testing.T) {
	f, err := parseDaemonFlags(t, "--metrics-listen", "127.0.0.1:9465", "--pprof")
	if err != nil {
		t.Fatal(err)
	}
	o := f.options(&globalFlags{stateDir: t.TempDir()})
	if o.MetricsListen != "127.0.0.1:9465" || !o.Pprof {
		t.Fatalf("options: %q %v", o.MetricsListen, o.Pprof)
	}
	args := f.args()
	if i := slices.Index(args, "--metrics-listen"); i < 0 || args[i+1] != "127.0.0.1:9465" || !slices.Contains(args, "--pprof") {
		t.Fatalf("spawn args %v", args)
	}
	back, err := parseDaemonFlags(t, args...)
	if err != nil || back.metrics != f.metrics || back.pprof != f.pprof {
		t.Fatalf("args do not parse back: %v %+v", err, back)
	}

	// Off by default, and "off" is off: nothing passed on.
	for _, in := range [][]string{nil, {"--metrics-listen", "off"}} {
		f, err := parseDaemonFlags(t, in...)
		if err != nil || f.metrics != "" || slices.Contains(f.args(), "--metrics-listen") || slices.Contains(f.args(), "--pprof") {
			t.Fatalf("%v: %v %q %v", in, err, f.metrics, f.args())
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--metrics-listen", "9465"}, `"9465": want HOST:PORT or off`},
		{[]string{"--metrics-listen", "localhost:99999"}, "bad port"},
		{[]string{"--pprof"}, "--pprof needs --metrics-listen"},
		{[]string{"--pprof", "--metrics-listen", "off"}, "--pprof needs --metrics-listen"},
	} {
		if _, err := parseDaemonFlags(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
