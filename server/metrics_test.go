package server

import (
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"petrel/internal/metrics/metricstest"
	"petrel/management"
)

func TestMetricsConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
		want  string
	}{
		{"bad address", func(c *Config) { c.MetricsListen = "9464" }, `--metrics-listen "9464": want HOST:PORT or off`},
		{"bad port", func(c *Config) { c.MetricsListen = "127.0.0.1:99999" }, "--metrics-listen"},
		{"pprof without listener", func(c *Config) { c.Pprof = true }, "--pprof needs --metrics-listen"},
		{"pprof with listener off", func(c *Config) { c.Pprof, c.MetricsListen = true, "off" }, "--pprof needs --metrics-listen"},
		{"the public port", func(c *Config) { c.Listen, c.MetricsListen = "127.0.0.1:8080", "127.0.0.1:8080" }, "must not be the public --listen"},
		{"the public port, all addresses", func(c *Config) { c.Listen, c.MetricsListen = ":8080", "127.0.0.1:8080" }, "must not be the public --listen"},
	} {
		cfg := loopbackConfig(t, dir)
		tc.tweak(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	cfg := loopbackConfig(t, dir)
	cfg.MetricsListen = "off"
	if srv := start(t, cfg); srv.MetricsAddr() != nil {
		t.Fatal("metrics listener with --metrics-listen off")
	}
}

func TestCodeLabel(t *testing.T) {
	for c, want := range map[codes.Code]string{codes.OK: "ok", codes.InvalidArgument: "invalid_argument",
		codes.ResourceExhausted: "resource_exhausted", codes.PermissionDenied: "permission_denied", codes.Code(99): "code(99)"} {
		if got := codeLabel(c); got != want {
			t.Errorf("codeLabel(%v) = %q, want %q", c, got, want)
		}
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The metrics listener is its own socket: neither /metrics nor the
// profiler is ever on the public port, and the profiler is on the metrics
// listener only with Pprof. Series are read at scrape time (a STUN request
// shows up at the next scrape).
func TestMetricsListenerApartFromPublicPort(t *testing.T) {
	for _, withPprof := range []bool{false, true} {
		cfg := loopbackConfig(t, t.TempDir())
		cfg.MetricsListen, cfg.Pprof = "127.0.0.1:0", withPprof
		srv := start(t, cfg)
		if srv.MetricsAddr() == nil || srv.MetricsAddr().String() == srv.Addr().String() {
			t.Fatalf("metrics on %v, public on %v", srv.MetricsAddr(), srv.Addr())
		}
		pub, mon := "http://"+srv.Addr().String(), "http://"+srv.MetricsAddr().String()
		for _, p := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/heap"} {
			if code, _ := httpGet(t, pub+p); code != 404 {
				t.Errorf("public port serves %s: %d", p, code)
			}
		}
		want := 404
		if withPprof {
			want = 200
		}
		if code, _ := httpGet(t, mon+"/debug/pprof/"); code != want {
			t.Errorf("pprof %v: /debug/pprof/ = %d, want %d", withPprof, code, want)
		}
		if code, _ := httpGet(t, mon+"/debug/pprof/cmdline"); code != 404 {
			t.Errorf("pprof %v: /debug/pprof/cmdline = %d, want 404", withPprof, code)
		}
		before := metricstest.Scrape(t, mon+"/metrics")
		for _, name := range []string{"petrel_management_sync_streams", "petrel_management_peers", "petrel_store_update_retries_total",
			"petrel_signal_sessions", "petrel_relay_connections", "petrel_relay_forwarded_bytes_total", "go_goroutines", "process_open_fds"} {
			if before[name] == nil {
				t.Errorf("no %s", name)
			}
		}
		stunBinding(t, srv.STUNAddr().String())
		answered, _ := before.Value("petrel_stun_requests_total", "result", "answered")
		after, _ := metricstest.Scrape(t, mon+"/metrics").Value("petrel_stun_requests_total", "result", "answered")
		if after != answered+1 {
			t.Fatalf("stun answered %v -> %v, want +1", answered, after)
		}
	}
}

// Store transactions are timed: a mutation adds an ok sample.
func TestMetricsStoreTimed(t *testing.T) {
	srv := start(t, loopbackConfig(t, t.TempDir()))
	count := func() float64 {
		fams, err := srv.Metrics().Gatherer().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() != "petrel_store_update_duration_seconds" {
				continue
			}
			for _, m := range f.GetMetric() {
				if metricstest.Label(m, "result") == "ok" {
					return float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
		return 0
	}
	n := count()
	m := srv.Management()
	if _, _, err := m.CreateSetupKey(testCtx(t), m.Accounts()[0], management.SetupKeyInput{Name: "k"}); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != n+1 {
		t.Fatalf("store updates timed %v -> %v, want +1", n, got)
	}
}

// A metrics port that cannot be bound fails Start, which releases
// everything it had opened.
func TestMetricsListenFailureRollsBack(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pubAddr := free.Addr().String()
	free.Close()
	cfg := loopbackConfig(t, t.TempDir())
	cfg.Listen, cfg.MetricsListen = pubAddr, taken.Addr().String()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Start(testCtx(t))
	if err == nil || !strings.Contains(err.Error(), "metrics listen on") || !strings.Contains(err.Error(), "--metrics-listen off") {
		t.Fatalf("start: %v", err)
	}
	ln, err := net.Listen("tcp", pubAddr)
	if err != nil {
		t.Fatalf("public port still held after a failed start: %v", err)
	}
	ln.Close()
}

// Only the components a process runs export their series.
func TestMetricsFollowComponents(t *testing.T) {
	cfg := loopbackConfig(t, t.TempDir())
	cfg.Components = Components{Relay: true}
	names := start(t, cfg).Metrics().Names()
	if !slices.Contains(names, "petrel_relay_frames_total") {
		t.Fatalf("relay alone lacks its series: %v", names)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "petrel_management_") || strings.HasPrefix(n, "petrel_signal_") || strings.HasPrefix(n, "petrel_stun_") {
			t.Errorf("relay alone exports %s", n)
		}
	}
}
