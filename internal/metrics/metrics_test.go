package metrics

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseListen(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{"", "", false},
		{"off", "", false},
		{"OFF", "", false},
		{"127.0.0.1:9464", "127.0.0.1:9464", false},
		{"[::1]:0", "[::1]:0", false},
		{":9464", ":9464", false},
		{"9464", "", true},
		{"127.0.0.1", "", true},
		{"127.0.0.1:http", "", true},
		{"127.0.0.1:70000", "", true},
		{"127.0.0.1:-1", "", true},
	} {
		got, err := ParseListen(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseListen(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// testRegistry has one scrape-time family whose value the test sets.
func testRegistry(v *float64) *Registry {
	r := NewRegistry()
	f := Counter("petrel_test_things_total", "Things.", "kind")
	r.MustRegister(NewCollector(func(ch chan<- prometheus.Metric) { f.Emit(ch, *v, "a") }, f))
	return r
}

// /metrics serves the registry, read at scrape time; /debug/pprof/ is 404
// without Pprof and served with it, never /debug/pprof/cmdline; other
// paths are 404; Stop frees the port and is idempotent.
func TestListener(t *testing.T) {
	for _, withPprof := range []bool{false, true} {
		v := 3.0
		l, err := Listen("127.0.0.1:0", testRegistry(&v), Options{Pprof: withPprof})
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + l.Addr().String()
		code, body := get(t, base+"/metrics")
		if code != 200 || !strings.Contains(body, `petrel_test_things_total{kind="a"} 3`) || !strings.Contains(body, "go_goroutines ") ||
			!strings.Contains(body, "process_cpu_seconds_total ") {
			t.Fatalf("/metrics: %d\n%s", code, body)
		}
		v = 5
		if _, body := get(t, base+"/metrics"); !strings.Contains(body, `petrel_test_things_total{kind="a"} 5`) {
			t.Fatal("value not read at scrape time")
		}
		want := 404
		if withPprof {
			want = 200
		}
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1"} {
			if code, _ := get(t, base+p); code != want {
				t.Errorf("pprof %v: %s = %d, want %d", withPprof, p, code, want)
			}
		}
		for _, p := range []string{"/debug/pprof/cmdline", "/", "/healthz", "/api/peers"} {
			if code, _ := get(t, base+p); code != 404 {
				t.Errorf("pprof %v: %s = %d, want 404", withPprof, p, code)
			}
		}
		l.Stop()
		l.Stop()
		if _, err := http.Get(base + "/metrics"); err == nil {
			t.Fatal("still serving after Stop")
		}
	}
	var nilL *Listener
	nilL.Stop()
}

func TestListenError(t *testing.T) {
	v := 0.0
	l, err := Listen("127.0.0.1:0", testRegistry(&v), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	if _, err := Listen(l.Addr().String(), testRegistry(&v), Options{}); err == nil || !strings.Contains(err.Error(), "metrics listen on") {
		t.Fatalf("second listener on a taken port: %v", err)
	}
}

// Names lists what collectors describe, vectors without series included;
// a series with the wrong label count fails its scrape, not the process.
func TestNamesAndInvalidSeries(t *testing.T) {
	r := NewRegistry()
	bad := Gauge("petrel_test_bad", "Wrong labels.", "a", "b")
	r.MustRegister(NewCollector(func(ch chan<- prometheus.Metric) { bad.Emit(ch, 1, "only-one") }, bad))
	r.MustRegister(prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "petrel_test_seconds", Help: "h"}, []string{"x"}))
	names := r.Names()
	for _, want := range []string{"petrel_test_bad", "petrel_test_seconds", "go_goroutines", "process_resident_memory_bytes"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names lacks %s: %v", want, names)
		}
	}
	if _, err := r.Gatherer().Gather(); err == nil || !strings.Contains(err.Error(), "petrel_test_bad") {
		t.Fatalf("gather with a bad series: %v", err)
	}
}
