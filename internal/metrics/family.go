package metrics

import "github.com/prometheus/client_golang/prometheus"

// Family is one metric family whose values a collector reads at scrape
// time from a component's counters (no Inc calls on the component's paths).
type Family struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

// Counter declares a counter family (name should end in _total).
func Counter(name, help string, labels ...string) *Family {
	return &Family{desc: prometheus.NewDesc(name, help, labels, nil), typ: prometheus.CounterValue}
}

// Gauge declares a gauge family.
func Gauge(name, help string, labels ...string) *Family {
	return &Family{desc: prometheus.NewDesc(name, help, labels, nil), typ: prometheus.GaugeValue}
}

// Emit sends one series of f with value v and the label values lvs (in the
// order the family declared its labels). A wrong number of label values is
// reported as an invalid metric in the scrape, not a panic.
func (f *Family) Emit(ch chan<- prometheus.Metric, v float64, lvs ...string) {
	m, err := prometheus.NewConstMetric(f.desc, f.typ, v, lvs...)
	if err != nil {
		m = prometheus.NewInvalidMetric(f.desc, err)
	}
	ch <- m
}

// Collector adapts a read function into a prometheus.Collector over a
// fixed set of families: read runs at every scrape, on the scraping
// goroutine, and must only read (atomics, snapshots), never block for long.
type Collector struct {
	fams []*Family
	read func(ch chan<- prometheus.Metric)
}

// NewCollector returns a collector of fams whose values read emits.
func NewCollector(read func(ch chan<- prometheus.Metric), fams ...*Family) *Collector {
	return &Collector{fams: fams, read: read}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range c.fams {
		ch <- f.desc
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) { c.read(ch) }
