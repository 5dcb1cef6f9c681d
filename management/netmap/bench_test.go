package netmap

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"petrel/management/model"
	mpb "petrel/proto/managementpb"
)

// cpuMeter reports process CPU time per op ("cpu-ns/op"): on a shared,
// loaded machine it is steadier than wall time (it includes GC workers, so
// on an idle machine it can exceed ns/op).
type cpuMeter struct {
	b     *testing.B
	start time.Duration
	n     int
}

func meter(b *testing.B) *cpuMeter { return &cpuMeter{b: b, start: processCPU()} }

func (m *cpuMeter) op() { m.n++ }

func (m *cpuMeter) report() {
	if m.n > 0 {
		m.b.ReportMetric(float64(processCPU()-m.start)/float64(m.n), "cpu-ns/op")
	}
}

// BenchmarkBuild indexes the fixture account.
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		a := benchAccount(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cm := meter(b)
			for b.Loop() {
				Build(a)
				cm.op()
			}
			cm.report()
		})
	}
}

// BenchmarkMapOne builds one peer's map (a member of the exit-node
// distribution group, so routes and routed allowed IPs are exercised).
func BenchmarkMapOne(b *testing.B) {
	for _, n := range []int{1000, 10000, 30000} {
		s := Build(benchAccount(n))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cm := meter(b)
			for b.Loop() {
				if _, err := s.Map("p00021"); err != nil {
					b.Fatal(err)
				}
				cm.op()
			}
			cm.report()
		})
	}
}

// BenchmarkMapAll builds every peer's map.
func BenchmarkMapAll(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		s := Build(benchAccount(n))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cm := meter(b)
			for b.Loop() {
				for _, e := range s.sorted {
					if _, err := s.Map(e.id); err != nil {
						b.Fatal(err)
					}
				}
				cm.op()
			}
			cm.report()
		})
	}
}

// BenchmarkJoinFanout: one peer joins a 5,000-peer account (copy-on-write
// account update excluded): Next + Deltas for every affected peer.
func BenchmarkJoinFanout(b *testing.B) {
	a := benchAccount(5000)
	s := Build(a)
	next := clone(a)
	addJoiner(next, "joiner", ipN(60000), "g0007")
	ch := Change{PeersAdded: []string{"joiner"}, Groups: []string{"g0007"}}
	var ds = Deltas(s, s.Next(next, ch), ch)
	cm := meter(b)
	for b.Loop() {
		ds = Deltas(s, s.Next(next, ch), ch)
		cm.op()
	}
	cm.report()
	maxSz, total := 0, 0
	for _, d := range ds {
		sz := proto.Size(d)
		maxSz, total = max(maxSz, sz), total+sz
	}
	b.ReportMetric(float64(len(ds)), "deltas/op")
	b.ReportMetric(float64(maxSz), "max-B/delta")
	b.ReportMetric(float64(total)/float64(len(ds)), "mean-B/delta")
}

// BenchmarkPolicyChange: one per-group policy of a 5,000-peer account
// changes its ports (views rebuilt, 20 peers take the full Diff path).
func BenchmarkPolicyChange(b *testing.B) {
	a := benchAccount(5000)
	s := Build(a)
	next := clone(a)
	p := *next.Policies["tcp-g0007"]
	p.Rules = append([]model.PolicyRule(nil), p.Rules...)
	p.Rules[0].Ports = []model.PortRange{{Start: 443, End: 443}}
	next.Policies[p.ID] = &p
	ch := Change{Policies: []string{p.ID}}
	var ds map[string]*mpb.NetworkMapDelta
	cm := meter(b)
	for b.Loop() {
		ds = Deltas(s, s.Next(next, ch), ch)
		cm.op()
	}
	cm.report()
	if len(ds) != 20 {
		b.Fatalf("%d deltas, want 20", len(ds))
	}
}
