// Package metricstest scrapes a Prometheus text endpoint in tests and reads
// series from it. Imported by tests only.
package metricstest

import (
	"fmt"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are one scrape, by family name.
type Families map[string]*dto.MetricFamily

// Scrape GETs url (a /metrics endpoint) and parses it; any failure fails
// the test.
func Scrape(t testing.TB, url string) Families {
	t.Helper()
	f, err := scrape(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return f
}

func scrape(url string) (Families, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// Value is the value of the first series of family name whose labels
// include every pair of labels ("name", "value", ...): a counter's,
// gauge's or untyped value, a histogram's sample count. ok is false when
// there is no such series.
func (f Families) Value(name string, labels ...string) (v float64, ok bool) {
	for _, m := range f.Series(name, labels...) {
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.GetUntyped() != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// Series are the series of family name whose labels include every pair of
// labels.
func (f Families) Series(name string, labels ...string) []*dto.Metric {
	fam := f[name]
	if fam == nil {
		return nil
	}
	var out []*dto.Metric
	for _, m := range fam.GetMetric() {
		if hasLabels(m, labels) {
			out = append(out, m)
		}
	}
	return out
}

// Label is the value of label l of m ("" if it has none).
func Label(m *dto.Metric, l string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == l {
			return lp.GetValue()
		}
	}
	return ""
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if Label(m, pairs[i]) != pairs[i+1] {
			return false
		}
	}
	return true
}
