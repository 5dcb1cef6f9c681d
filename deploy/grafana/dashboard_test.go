package grafana_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"petrel/client/daemon"
	"petrel/server"
)

// dashboard is the part of Grafana's JSON model the test reads.
type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int     `json:"id"`
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // a collapsed row's
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func load(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("petrel.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("petrel.json: %v", err)
	}
	return d
}

// registered lists every metric name a full server and an agent register.
func registered(t *testing.T) []string {
	t.Helper()
	srv, err := server.New(server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", STUNListen: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	agent := daemon.New(daemon.Options{StateDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if _, err := srv.Metrics().Gatherer().Gather(); err != nil {
		t.Fatalf("server gather: %v", err)
	}
	if _, err := agent.Metrics().Gatherer().Gather(); err != nil {
		t.Fatalf("agent gather: %v", err)
	}
	return append(srv.Metrics().Names(), agent.Metrics().Names()...)
}

// Every metric a panel or a variable queries is registered by the code
// (a histogram's _bucket, _sum and _count count as its name), and every
// query names at least one metric.
func TestDashboardMetricsExist(t *testing.T) {
	d := load(t)
	names := registered(t)
	known := func(m string) bool {
		if slices.Contains(names, m) {
			return true
		}
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(m, suf); ok && slices.Contains(names, base) {
				return true
			}
		}
		return false
	}
	var exprs []string
	var walk func([]panel)
	ids := map[int]bool{}
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			b, _ := json.Marshal(v.Query)
			if m := labelValues.FindStringSubmatch(string(b)); m != nil {
				exprs = append(exprs, m[1])
			} else {
				t.Errorf("variable %s: query %s is not label_values(METRIC, LABEL)", v.Name, b)
			}
		}
	}
	if len(exprs) < 20 {
		t.Fatalf("only %d queries in the dashboard", len(exprs))
	}
	used := 0
	for _, e := range exprs {
		ms := metricNames(e)
		if len(ms) == 0 {
			t.Errorf("query names no metric: %s", e)
		}
		for _, m := range ms {
			used++
			if !known(m) {
				t.Errorf("the dashboard queries %s, which the code does not register (query %s)", m, e)
			}
		}
	}
	t.Logf("%d queries, %d metric references, %d names registered", len(exprs), used, len(names))
}

var labelValues = regexp.MustCompile(`label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)`)

// PromQL pieces that are not metric names.
var (
	quoted     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	matchers   = regexp.MustCompile(`\{[^}]*\}`)
	ranges     = regexp.MustCompile(`\[[^\]]*\]`)
	grouping   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
	keywords   = map[string]bool{"bool": true, "and": true, "or": true, "unless": true, "offset": true, "by": true,
		"without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// metricNames extracts the metric names of a PromQL expression: the
// identifiers outside strings, label matchers, ranges and grouping
// clauses that are neither a function or aggregation (followed by "(")
// nor a keyword, nor a Grafana variable.
func metricNames(expr string) []string {
	e := quoted.ReplaceAllString(expr, `""`)
	e = matchers.ReplaceAllString(e, " ")
	e = ranges.ReplaceAllString(e, " ")
	e = grouping.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range identifier.FindAllStringIndex(e, -1) {
		tok := e[loc[0]:loc[1]]
		if loc[0] > 0 && (e[loc[0]-1] == '$' || e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9' || e[loc[0]-1] == '.') {
			continue // a variable, or the exponent or unit of a number
		}
		if strings.HasSuffix(tok, "(") {
			continue // a function or aggregation
		}
		if tok = strings.TrimSpace(tok); !keywords[strings.ToLower(tok)] && !slices.Contains(out, tok) {
			out = append(out, tok)
		}
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`petrel_agent_engine_up`, []string{"petrel_agent_engine_up"}},
		{`sum by (instance, peer) (rate(petrel_agent_peer_rx_bytes_total{instance=~"$agent",peer!="x"}[$__rate_interval])) * 8`,
			[]string{"petrel_agent_peer_rx_bytes_total"}},
		{`histogram_quantile(0.99, sum by (le, op) (rate(petrel_management_login_duration_seconds_bucket{a="b"}[5m])))`,
			[]string{"petrel_management_login_duration_seconds_bucket"}},
		{`rate(a_total[1m]) / on (instance) group_left (x) b_total + 1e3 unless c offset 5m`, []string{"a_total", "b_total", "c"}},
		{`sum(x{l="sum(y)"}) or vector(0)`, []string{"x"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%s) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}
