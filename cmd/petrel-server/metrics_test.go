package main

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var metricsLine = regexp.MustCompile(`metrics: +(http://\S+)/metrics\n`)

// run prints the metrics URL; it serves /metrics, and the profiler with
// --pprof; --metrics-listen off serves nothing; bad values are usage
// errors.
func TestRunMetricsFlags(t *testing.T) {
	srv := runServer(t, t.TempDir(), "--metrics-listen", "127.0.0.1:0", "--pprof")
	m := metricsLine.FindStringSubmatch(srv.banner)
	if m == nil || strings.Contains(m[1], srv.addr) {
		t.Fatalf("banner metrics line (public port %s):\n%s", srv.addr, srv.banner)
	}
	for path, want := range map[string]int{"/metrics": 200, "/debug/pprof/": 200, "/debug/pprof/cmdline": 404} {
		resp, err := http.Get(m[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}

	off := runServer(t, t.TempDir(), "--metrics-listen", "off")
	if strings.Contains(off.banner, "metrics:") {
		t.Fatalf("--metrics-listen off printed a metrics URL:\n%s", off.banner)
	}
	if err := off.stop(); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ args []string }{
		{[]string{"--metrics-listen", "9464"}},
		{[]string{"--pprof", "--metrics-listen", "off"}},
		{[]string{"--listen", "127.0.0.1:8080", "--metrics-listen", "127.0.0.1:8080"}},
	} {
		_, err := cli(t, append([]string{"run", "--data-dir", t.TempDir()}, tc.args...)...)
		var ue usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), "--metrics-listen") {
			t.Errorf("%v: %v, want a usage error naming --metrics-listen", tc.args, err)
		}
	}
}
