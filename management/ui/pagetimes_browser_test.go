package ui_test

// Page timings of the peers page for a 5,000-peer account: the
// measurement behind the "Dashboard" section of BENCHMARKS.md, run by
// scripts/bench.sh (step ui). It measures, it does not judge: nothing
// fails on a slow number, so it runs only when asked.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"petrel/internal/keys"
	"petrel/management/model"
)

// timingsPeers is the size of the measured account.
const timingsPeers = 5000

// TestPeersPageTimings measures the peers page of an account with 5,000
// peers (10 groups of 500, 50 connected): time to first byte and to the
// last byte of the HTML through a Go client, for the first page, a search,
// the last page and the rows fragment htmx refetches on live events; then
// the full render in headless Chromium from the Navigation Timing API. It
// prints a markdown table and appends it to $PETREL_UI_TIMINGS_REPORT when
// set; $PETREL_UI_TIMINGS_RUNS sets the runs per measurement (default 20);
// $PETREL_UI_TIMINGS_CPUPROFILE names a file for a CPU profile of the
// measurements (go tool pprof).
//
// It is a measurement rig, not a test: it skips unless PETREL_UI_TIMINGS
// is set, so the ordinary suite does not spend a minute registering peers.
func TestPeersPageTimings(t *testing.T) {
	if os.Getenv("PETREL_UI_TIMINGS") == "" {
		t.Skip("measurement rig: set PETREL_UI_TIMINGS=1 (scripts/bench.sh, step ui)")
	}
	runs := 20
	if v := os.Getenv("PETREL_UI_TIMINGS_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("PETREL_UI_TIMINGS_RUNS=%q: want a number from 1", v)
		}
		runs = n
	}
	chromium(t)
	load := "unknown"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
		}
	}
	e := newEnv(t)

	start := time.Now()
	ids, privs := registerPeers(t, e, timingsPeers)
	for g := range 10 {
		if _, err := e.svc.Put(e.ctx(), e.acct, &model.Group{Name: fmt.Sprintf("team-%d", g),
			PeerIDs: ids[g*timingsPeers/10 : (g+1)*timingsPeers/10]}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range privs[:50] {
		e.connect(k)
	}
	if n := len(e.snapshot().Peers); n != timingsPeers {
		t.Fatalf("%d peers registered, want %d", n, timingsPeers)
	}
	t.Logf("account of %d peers built in %v", timingsPeers, time.Since(start).Round(time.Millisecond))

	b := e.browser()
	b.signIn(e.admin)
	if path := os.Getenv("PETREL_UI_TIMINGS_CPUPROFILE"); path != "" {
		stop := cpuProfile(t, path)
		defer stop()
	}
	var table []timingRow
	for _, m := range []struct{ what, path, want string }{
		{"`/ui/peers` (page 1 of 100)", "/ui/peers", "node-0049"},
		{"`/ui/peers?q=node-1` (1,000 matches, page 1)", "/ui/peers?q=node-1", "node-1049"},
		{"`/ui/peers?page=100` (last page)", "/ui/peers?page=100", "node-4999"},
		{"`/ui/peers/rows` (htmx refetch on a live event)", "/ui/peers/rows", "node-0049"},
	} {
		first, last, size := timeGets(t, b, m.path, m.want, runs)
		table = append(table,
			timingRow{what: "Go client, first byte: " + m.what, d: first, bytes: size},
			timingRow{what: "Go client, whole response: " + m.what, d: last, bytes: size})
	}

	tb := newTab(t, e.srv.URL)
	tb.signIn(e.admin)
	table = append(table, timeRender(tb, runs)...)
	tb.clean("peers page timings")

	report := renderTimings(table, runs)
	t.Logf("peers page, %d peers, %d runs each (GOMAXPROCS %d, load average at start %s):\n%s", timingsPeers, runs,
		runtime.GOMAXPROCS(0), load, report)
	if path := os.Getenv("PETREL_UI_TIMINGS_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		_, err = fmt.Fprintf(f, "Peers page, %d peers, %d runs each, %s, load average at start %s:\n\n%s\n", timingsPeers, runs,
			time.Now().UTC().Format("2006-01-02 15:04 UTC"), load, report)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// cpuProfile writes a CPU profile of the measurements (not of building
// the account) to path until stop is called.
func cpuProfile(t *testing.T, path string) (stop func()) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}
}

// registerPeers registers n peers named node-0000… through the service's
// Login, as agents with a setup key do, from a few goroutines (the
// registrations serialize on the account; the workers overlap key
// generation and request setup). It returns their IDs and keys in name
// order.
func registerPeers(t *testing.T, e *env, n int) ([]string, []keys.Private) {
	t.Helper()
	key := e.setupKey()
	ids, privs := make([]string, n), make([]keys.Private, n)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next = make(chan int)
	)
	for range 4 {
		wg.Go(func() {
			for i := range next {
				priv, err := keys.NewPrivate()
				if err == nil {
					name := fmt.Sprintf("node-%04d", i)
					r, lerr := e.svc.Login(context.Background(), priv.Public(), loginRequest(key, name))
					if err = lerr; err == nil {
						ids[i], privs[i] = r.GetPeerConfig().GetPeerId(), priv
					}
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("register node-%04d: %w", i, err))
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d registrations failed, first: %v", len(errs), errs[0])
	}
	return ids, privs
}

// timeGets fetches path runs times (after one warm-up request) and returns
// the times to the first and to the last byte and the body's size. Each
// body must contain want.
func timeGets(t *testing.T, b *browser, path, want string, runs int) (first, last []time.Duration, size int) {
	t.Helper()
	for i := range runs + 1 {
		var start, firstByte time.Time
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotFirstResponseByte: func() { firstByte = time.Now() },
		})
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.e.srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		r, err := b.c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, err := io.ReadAll(r.Body)
		end := time.Now()
		r.Body.Close()
		if err != nil || r.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s: status %d, err %v, body lacks %q:\n%.2000s", path, r.StatusCode, err, want, body)
		}
		if i == 0 {
			continue // warm-up: connection set up, code paths paged in
		}
		first = append(first, firstByte.Sub(start))
		last = append(last, end.Sub(start))
		size = len(body)
	}
	return first, last, size
}

// navTiming is the page's PerformanceNavigationTiming, in milliseconds
// from the start of the navigation, and the HTML's size.
type navTiming struct {
	ResponseStart    float64 `json:"responseStart"`
	ResponseEnd      float64 `json:"responseEnd"`
	DOMContentLoaded float64 `json:"domContentLoadedEventEnd"`
	LoadEnd          float64 `json:"loadEventEnd"`
	DecodedBodySize  int     `json:"decodedBodySize"`
	Rows             int     `json:"rows"`
}

// navTimingJS waits (as a poll predicate) for the load event to have run
// and the rows to be present, then reports the navigation's timing.
const navTimingJS = `(() => {
  const n = performance.getEntriesByType('navigation')[0];
  const rows = document.querySelectorAll('#peer-rows tr').length;
  if (!n || n.loadEventEnd === 0 || rows === 0) return null;
  return {responseStart: n.responseStart - n.startTime, responseEnd: n.responseEnd - n.startTime,
    domContentLoadedEventEnd: n.domContentLoadedEventEnd - n.startTime, loadEventEnd: n.loadEventEnd - n.startTime,
    decodedBodySize: n.decodedBodySize, rows: rows};
})()`

// timeRender loads /ui/peers in Chromium runs times (after one warm-up
// load that fills the asset cache) and returns the Navigation Timing rows.
// Times run from the start of the navigation; the page's scripts and
// style come from the browser's cache, as they do for a returning user.
func timeRender(tb *tab, runs int) []timingRow {
	tb.t.Helper()
	var first, body, dcl, load []time.Duration
	size := 0
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	for i := range runs + 1 {
		// Each run comes from a blank page after a pause, as a person
		// opening the page does: back to back, a load would overlap the
		// previous page's teardown and its event stream's setup, which
		// on a small machine added 50–150 ms to the first byte.
		tb.do("open about:blank", chromedp.Navigate("about:blank"))
		time.Sleep(300 * time.Millisecond)
		tb.do("open /ui/peers", chromedp.Navigate(tb.base+"/ui/peers"))
		nt, err := chromedp.Run(tb.ctx, chromedp.Poll[navTiming](navTimingJS, chromedp.WithPollingInterval(10*time.Millisecond)))
		if err != nil {
			tb.t.Fatalf("navigation timing of /ui/peers: %v", err)
		}
		if nt.Rows != 50 {
			tb.t.Fatalf("/ui/peers shows %d rows, want 50", nt.Rows)
		}
		if i == 0 {
			continue
		}
		first, body = append(first, ms(nt.ResponseStart)), append(body, ms(nt.ResponseEnd))
		dcl, load = append(dcl, ms(nt.DOMContentLoaded)), append(load, ms(nt.LoadEnd))
		size = nt.DecodedBodySize
	}
	return []timingRow{
		{what: "Chromium, first byte (`responseStart`)", d: first, bytes: size},
		{what: "Chromium, HTML received (`responseEnd`)", d: body, bytes: size},
		{what: "Chromium, `DOMContentLoaded` done", d: dcl, bytes: size},
		{what: "Chromium, `load` done (full render)", d: load, bytes: size},
	}
}

// timingRow is one line of the report: a measurement's durations.
type timingRow struct {
	what  string
	d     []time.Duration
	bytes int
}

// percentile is the nearest-rank percentile p (0–100) of sorted.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := max(1, (p*len(sorted)+99)/100)
	return sorted[min(rank, len(sorted))-1]
}

func renderTimings(rows []timingRow, runs int) string {
	var s strings.Builder
	fmt.Fprintf(&s, "| measurement (%d runs) | p50 | p95 | max | HTML bytes |\n|---|---|---|---|---|\n", runs)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	for _, r := range rows {
		d := slices.Sorted(slices.Values(r.d))
		fmt.Fprintf(&s, "| %s | %s | %s | %s | %d |\n", r.what, ms(percentile(d, 50)), ms(percentile(d, 95)), ms(d[len(d)-1]), r.bytes)
	}
	return s.String()
}
