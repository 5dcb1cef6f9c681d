package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// report is everything a run measured and checked.
type report struct {
	Config    config        `json:"config"`
	Topology  string        `json:"topology"`
	Separate  bool          `json:"server_in_own_process"`
	SetupTime time.Duration `json:"setup_ns"`
	StormTime time.Duration `json:"storm_ns"` // checkpoint pauses excluded

	PolicyChanges  int64 `json:"policy_changes"`
	BarrierChanges int64 `json:"barrier_changes"`
	Deleted        int64 `json:"peers_deleted"`
	Registered     int64 `json:"peers_registered"`
	Reconnected    int64 `json:"reconnects"`
	RESTErrors     int64 `json:"rest_errors"`
	LoginErrors    int64 `json:"login_errors"`
	SkippedChurn   int64 `json:"churn_skipped"` // no idle agent found

	Fulls      int64 `json:"full_maps"`
	Deltas     int64 `json:"deltas"`
	FullBytes  int64 `json:"full_map_bytes"`
	DeltaBytes int64 `json:"delta_bytes"`
	Coalesced  int64 `json:"policy_changes_coalesced"` // per agent: storm changes merged into a later delta
	Early      int64 `json:"early_deliveries"`         // delta before the mutation's call returned

	Latency      map[string]latSummary `json:"latency"`
	CallTime     map[string]latSummary `json:"call_time"` // mutation call start -> return
	FromStart    latSummary            `json:"latency_from_request_start"`
	MeanReach    map[string]float64    `json:"mean_agents_reached"`
	Gaps         int64                 `json:"serial_gaps"`
	Cuts         int64                 `json:"streams_cut"` // Unavailable (too slow): the agent resyncs
	StreamErrors int64                 `json:"stream_errors"`
	Checkpoints  []checkpoint          `json:"checkpoints"`

	LargestMapPeers int `json:"largest_map_peers"`
	LargestMapWire  int `json:"largest_map_wire_bytes"`  // sealed envelope as received
	LargestMapProto int `json:"largest_map_proto_bytes"` // the NetworkMap message

	ServerStormCPU  cpuWindow `json:"server_cpu_storm"`  // storm segments only
	ServerSteadyCPU cpuWindow `json:"server_cpu_steady"` // start checkpoint to end, checkpoints included
	AgentsStormCPU  cpuWindow `json:"agents_cpu_storm"`
	AgentsSteadyCPU cpuWindow `json:"agents_cpu_steady"`
}

// fill copies the counters into the report.
func (r *run) fill(rep *report) {
	m := &r.m
	rep.PolicyChanges, rep.BarrierChanges = m.policyChanges.Load(), m.barriers.Load()
	rep.Deleted, rep.Registered, rep.Reconnected = m.deleted.Load(), m.registered.Load(), m.reconnected.Load()
	rep.RESTErrors, rep.LoginErrors, rep.SkippedChurn = m.restErrors.Load(), m.loginErrors.Load(), m.skippedChurn.Load()
	rep.Fulls, rep.Deltas, rep.FullBytes, rep.DeltaBytes = m.fulls.Load(), m.deltas.Load(), m.fullBytes.Load(), m.deltaBytes.Load()
	rep.Coalesced, rep.Early = m.coalesced.Load(), m.early.Load()
	rep.Gaps, rep.Cuts, rep.StreamErrors = m.gaps.Load(), m.cuts.Load(), m.streamErrs.Load()
	rep.Latency = map[string]latSummary{"all storm changes": m.latAll.summary()}
	for k := range nKinds {
		rep.Latency[kindNames[k]] = m.lat[k].summary()
	}
	rep.FromStart = m.fromStart.summary()
	rep.CallTime = map[string]latSummary{"re-login (reconnect)": m.call[nKinds].summary()}
	for k := range nKinds {
		rep.CallTime[kindNames[k]] = m.call[k].summary()
	}
	rep.MeanReach = map[string]float64{}
	mean := func(name string, n int64, recs func(func(*mutRec))) {
		var sum int64
		recs(func(rec *mutRec) { sum += rec.reached.Load() })
		if n > 0 {
			rep.MeanReach[name] = float64(sum) / float64(n)
		}
	}
	mean(kindNames[kindDelete], rep.Deleted, func(f func(*mutRec)) {
		r.deletions.Range(func(_, v any) bool { f(v.(*mutRec)); return true })
	})
	mean(kindNames[kindRegister], rep.Registered, func(f func(*mutRec)) {
		r.registrations.Range(func(_, v any) bool { f(v.(*mutRec)); return true })
	})
	var storm, barrier int64
	r.policies.Range(func(_, v any) bool {
		if rec := v.(*mutRec); rec.barrier {
			barrier += rec.reached.Load()
		} else {
			storm += rec.reached.Load()
		}
		return true
	})
	if rep.PolicyChanges > 0 {
		rep.MeanReach[kindNames[kindPolicy]] = float64(storm) / float64(rep.PolicyChanges)
	}
	if rep.BarrierChanges > 0 {
		rep.MeanReach[kindNames[kindBarrier]] = float64(barrier) / float64(rep.BarrierChanges)
	}
	m.largestMu.Lock()
	rep.LargestMapPeers, rep.LargestMapWire, rep.LargestMapProto = m.largestPeers, m.largestWire, m.largestProto
	m.largestMu.Unlock()
}

// Growth limits between the start and the end checkpoint (same number of
// agents and streams, all freshly re-synced): beyond them the report
// flags growth.
const (
	goroutineSlack = 50
	heapSlack      = 1.25 // ratio, plus heapSlackBytes
	heapSlackBytes = 16 << 20
)

// growth describes goroutine or heap growth of one process ("" if none).
func growth(what string, a, b procStats) []string {
	var out []string
	if b.Goroutines > a.Goroutines+goroutineSlack {
		out = append(out, fmt.Sprintf("%s goroutines grew %d -> %d", what, a.Goroutines, b.Goroutines))
	}
	if float64(b.HeapLive) > float64(a.HeapLive)*heapSlack+heapSlackBytes {
		out = append(out, fmt.Sprintf("%s live heap grew %s -> %s", what, mib(a.HeapLive), mib(b.HeapLive)))
	}
	return out
}

// problems lists every failed check; empty means the run passed.
func (rep *report) problems() []string {
	var out []string
	if rep.Gaps > 0 {
		out = append(out, fmt.Sprintf("%d serial gaps", rep.Gaps))
	}
	for _, cp := range rep.Checkpoints {
		if cp.BarrierMissing > 0 {
			out = append(out, fmt.Sprintf("checkpoint %q: %d agents never got barrier change %d", cp.Name, cp.BarrierMissing, cp.Barrier))
		}
		if cp.Mismatches > 0 {
			out = append(out, fmt.Sprintf("checkpoint %q: %d of %d agents' applied maps differ from a fresh full map", cp.Name, cp.Mismatches, cp.Verified))
		}
		if cp.VerifyTimeouts > 0 {
			out = append(out, fmt.Sprintf("checkpoint %q: %d agents got no fresh map to verify", cp.Name, cp.VerifyTimeouts))
		}
	}
	if rep.RESTErrors+rep.LoginErrors > 0 {
		out = append(out, fmt.Sprintf("%d REST and %d login errors", rep.RESTErrors, rep.LoginErrors))
	}
	if n := len(rep.Checkpoints); n >= 2 {
		a, b := rep.Checkpoints[0], rep.Checkpoints[n-1]
		out = append(out, growth("server", a.Server, b.Server)...)
		if rep.Separate {
			// In one process the agents' heap includes the server's.
			out = append(out, growth("agents process", a.Agents, b.Agents)...)
		}
	}
	return out
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func size(b int64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// print writes the human-readable report.
func (rep *report) print(w io.Writer) {
	c := rep.Config
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	where := "in its own process"
	if !rep.Separate {
		where = "in the agents' process (CPU and memory include the agents)"
	}
	p("storm: %d agents, %s", c.Agents, rep.Topology)
	p("       %d shared gRPC connections; server %s; SQLite store", c.Conns, where)
	p("setup: every agent registered and synced in %v", rep.SetupTime.Round(time.Millisecond))
	p("storm: %v of churn at %.0f%%/min (%.0f%% of it delete+register, the rest reconnect after up to %v offline), a policy change every %v; %d checkpoints",
		rep.StormTime.Round(time.Second), c.Churn*100, c.Replace*100, c.Offline, c.PolicyEvery, len(rep.Checkpoints))
	behind := ""
	if rep.ServerStormCPU.Wall > rep.StormTime*11/10 {
		behind = ": the server fell behind the offered changes (each segment waits for its last operations)"
	}
	p("       the storm segments took %v of wall time%s", rep.ServerStormCPU.Wall.Round(time.Second), behind)
	p("changes: %d policy changes, %d peers deleted, %d registered, %d reconnects (+%d barrier policy changes at checkpoints); %d churn events skipped (no idle agent)",
		rep.PolicyChanges, rep.Deleted, rep.Registered, rep.Reconnected, rep.BarrierChanges, rep.SkippedChurn)
	meanOf := func(b, n int64) int64 {
		if n == 0 {
			return 0
		}
		return b / n
	}
	p("delivery: %d deltas (mean %s on the wire), %d full maps (mean %s); %d storm changes coalesced into a later delta; %d deliveries before the call returned",
		rep.Deltas, size(meanOf(rep.DeltaBytes, rep.Deltas)), rep.Fulls, size(meanOf(rep.FullBytes, rep.Fulls)), rep.Coalesced, rep.Early)
	p("latency, mutation call returned -> delta applied at the agent:")
	names := append([]string{"all storm changes"}, kindNames[:]...)
	for _, n := range names {
		l := rep.Latency[n]
		reach := ""
		if v, ok := rep.MeanReach[n]; ok {
			reach = fmt.Sprintf("  (%.0f agents per change)", v)
		}
		p("  %-28s n=%-8d p50 %-9s p99 %-9s max %s%s", n, l.N, ms(l.P50), ms(l.P99), ms(l.Max), reach)
	}
	p("  %-28s n=%-8d p50 %-9s p99 %-9s max %s", "(storm, from call start)", rep.FromStart.N, ms(rep.FromStart.P50), ms(rep.FromStart.P99), ms(rep.FromStart.Max))
	p("mutation call time (request sent -> answer received), the server's side of the latency:")
	for _, n := range append(kindNames[:], "re-login (reconnect)") {
		l := rep.CallTime[n]
		p("  %-28s n=%-8d p50 %-9s p99 %-9s max %s", n, l.N, ms(l.P50), ms(l.P99), ms(l.Max))
	}
	p("streams: %d serial gaps, %d cut by the server (Unavailable, resynced), %d other failures", rep.Gaps, rep.Cuts, rep.StreamErrors)
	p("checkpoints (barrier change to every agent, then every agent re-synced and compared; samples after GC):")
	p("  %-10s %9s %7s %8s %10s %8s %10s %10s %10s %10s %10s %10s  %s", "name", "barrier", "missing", "verified", "mismatches", "timeouts", "verify", "srv gorout", "srv heap", "srv RSS", "agt gorout", "agt heap", "loadavg")
	for _, cp := range rep.Checkpoints {
		p("  %-10s %9s %7d %8d %10d %8d %10s %10d %10s %10s %10d %10s  %s", cp.Name, ms(cp.BarrierTime), cp.BarrierMissing, cp.Verified, cp.Mismatches,
			cp.VerifyTimeouts, ms(cp.VerifyTime), cp.Server.Goroutines, mib(cp.Server.HeapLive), mib(cp.Server.RSS), cp.Agents.Goroutines, mib(cp.Agents.HeapLive), cp.Load)
	}
	if n := len(rep.Checkpoints); n > 0 {
		last := rep.Checkpoints[n-1]
		p("server: CPU %.2f cores during the storm segments, %.2f cores start-to-end incl. checkpoints; RSS %s at the end, peak %s",
			rep.ServerStormCPU.Cores(), rep.ServerSteadyCPU.Cores(), mib(last.Server.RSS), mib(last.Server.PeakRSS))
		p("agents: CPU %.2f cores during the storm segments, %.2f cores start-to-end; RSS %s, peak %s",
			rep.AgentsStormCPU.Cores(), rep.AgentsSteadyCPU.Cores(), mib(last.Agents.RSS), mib(last.Agents.PeakRSS))
	}
	p("largest full map: %d peers, %s on the wire (sealed Sync message), %s NetworkMap protobuf",
		rep.LargestMapPeers, size(int64(rep.LargestMapWire)), size(int64(rep.LargestMapProto)))
	if probs := rep.problems(); len(probs) > 0 {
		p("RESULT: FAIL\n  %s", strings.Join(probs, "\n  "))
	} else {
		p("RESULT: OK (no lost change, no serial gap, no goroutine or heap growth)")
	}
}
