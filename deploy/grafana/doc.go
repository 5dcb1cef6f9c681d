// Package grafana holds petrel.json, a Grafana dashboard for the metrics
// that petrel-server and the agent export (docs/metrics.md). The package
// has no code; its test checks that every metric the dashboard queries is
// one the code registers, so renaming or removing a series in code fails
// until the dashboard follows.
package grafana
