// Command dataplane is the reference data-plane benchmark rig: each system
// under test (raw veth, reference wireguard-go, Petrel's data plane alone
// through wgpair, the whole Petrel agent with its packet filter on or off)
// gets its own pair of lab namespaces; rounds alternate the systems (A/B/C,
// B/C/A, ...) and the rig reports medians of iperf3 TCP throughput (1 and
// 4 streams), ping RTT, CPU-seconds per GB and RSS idle / after transfer.
// With both petrel-agent and petrel-agent-nofw it also reports the
// throughput and CPU ratios filter on / off, and the filter's packet
// counters (from `petrel status --json`) for every transfer.
//
//	sudo go run ./bench/dataplane -rounds 5 -out docs/bench/lab.md
//	sudo go run ./bench/dataplane -rounds 5 -systems wireguard-go,petrel-agent,petrel-agent-nofw
//
// It needs root, iperf3 and ping. It is a benchmark, not a test: no
// pass/fail thresholds.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"petrel/lab"
)

// sample is one round's measurement of one system.
type sample struct {
	tcp1, tcp4  float64      // Gbit/s
	rtt         float64      // ms, median of the round's pings
	sysCPUPerGB float64      // CPU-s of the system's processes per GB
	rigCPUPerGB float64      // CPU-s of system + iperf3 client and server per GB
	rssAfter    float64      // MB, largest system process after the transfers
	fw          filterCounts // agent systems: filter counters over the transfers
}

type rig struct {
	key     string // the -systems name
	sys     System
	pair    Pair
	ep      Endpoints
	server  *lab.Proc // iperf3 -s in B
	rssIdle float64   // MB, largest system process before any transfer
	runs    []sample
}

func main() {
	rounds := flag.Int("rounds", 5, "rounds (each runs every system once, order rotating)")
	secs := flag.Int("secs", 10, "iperf3 seconds per transfer")
	pings := flag.Int("pings", 20, "pings per round")
	systems := flag.String("systems", "veth,wireguard-go,petrel,petrel-agent,petrel-agent-nofw", "comma-separated systems: veth, wireguard-go, petrel, petrel-no-offload (wgpair: data plane alone), petrel-agent, petrel-agent-nofw (the agent, filter on / --debug-no-firewall)")
	out := flag.String("out", "", "markdown file whose dataplane section is replaced (printed to stdout too)")
	flag.BoolVar(&allOnBridge, "bridge", false, "put every system's hosts on the lab's internet bridge (as the agent systems always are) instead of a veth of their own")
	flag.StringVar(&profileDir, "cpuprofile-dir", "", "petrel systems: each tunnel process writes a CPU profile covering all rounds here (a.prof sends, b.prof receives)")
	flag.Parse()
	if profileDir != "" {
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "bench/dataplane:", err)
			os.Exit(2)
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := runRig(log, *rounds, *secs, *pings, strings.Split(*systems, ","), *out); err != nil {
		log.Error("dataplane bench failed", "err", err)
		os.Exit(1)
	}
}

func runRig(log *slog.Logger, rounds, secs, pings int, names []string, out string) error {
	if _, err := lab.CleanupStale("", log); err != nil {
		log.Warn("cleanup of stale labs", "err", err)
	}
	stopSig := lab.TeardownOnSignal("", log)
	defer stopSig()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	l, err := lab.New(lab.Options{Logger: log})
	if err != nil {
		return err
	}
	defer l.Close()
	dir, err := os.MkdirTemp("", "petrel-dataplane")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	wgBin, err := buildWireguardGo(dir)
	if err != nil {
		return err
	}
	byName := systemsByName(wgBin)
	var rigs []*rig
	for i, name := range names {
		mk, ok := byName[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("unknown system %q", name)
		}
		r, err := setupRig(ctx, l, mk(), i+1, dir, log)
		if err != nil {
			return err
		}
		r.key = strings.TrimSpace(name)
		defer r.sys.Teardown()
		rigs = append(rigs, r)
	}
	load0 := loadavg()
	for round := range rounds {
		for k := range rigs {
			r := rigs[(round+k)%len(rigs)]
			s, err := measure(ctx, r, secs, pings)
			if err != nil {
				return fmt.Errorf("round %d %s: %w", round+1, r.sys.Name(), err)
			}
			log.Info("round", "n", round+1, "system", r.sys.Name(), "tcp1", s.tcp1, "tcp4", s.tcp4, "rtt_ms", s.rtt,
				"cpu_s_per_gb", s.sysCPUPerGB, "fw_present", s.fw.present, "fw_in_allowed", s.fw.inAllowed,
				"fw_out_allowed", s.fw.outAllowed, "fw_dropped", s.fw.inDropped+s.fw.outDropped)
			r.runs = append(r.runs, s)
		}
	}
	report := render(rigs, rounds, secs, pings, load0, loadavg())
	fmt.Print(report)
	if out != "" {
		return writeSection(out, report)
	}
	return nil
}

// setupRig creates the namespace pair, brings the system up, starts the
// iperf3 server and waits until a ping crosses.
func setupRig(ctx context.Context, l *lab.Lab, sys System, idx int, dir string, log *slog.Logger) (*rig, error) {
	a, b, err := addPair(l, sys, idx)
	if err != nil {
		return nil, err
	}
	sdir := fmt.Sprintf("%s/sys%d", dir, idx)
	if err := os.MkdirAll(sdir, 0o700); err != nil {
		return nil, err
	}
	p := Pair{Lab: l, A: a, B: b, Index: idx, Dir: sdir, Log: log.With("system", sys.Name())}
	ep, err := sys.Setup(ctx, p) // ctx bounds the processes' lifetime
	if err != nil {
		return nil, fmt.Errorf("set up %s: %w", sys.Name(), err)
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	server, err := b.Start(ctx, "iperf3", "-s", "-B", ep.B.String(), "-p", "5201")
	if err != nil {
		return nil, err
	}
	for {
		if _, err := a.Run(sctx, "ping", "-c", "1", "-W", "1", ep.B.String()); err == nil {
			break
		}
		if sctx.Err() != nil {
			return nil, fmt.Errorf("set up %s: no ping across: %w", sys.Name(), sctx.Err())
		}
	}
	// The iperf3 server is listening once a TCP connect succeeds.
	for {
		c, err := a.DialContext(sctx, "tcp", netip.AddrPortFrom(ep.B, 5201).String())
		if err == nil {
			c.Close()
			break
		}
		if sctx.Err() != nil {
			return nil, fmt.Errorf("set up %s: iperf3 server: %w", sys.Name(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	idle, err := maxRSS(ep.PIDs)
	if err != nil {
		return nil, err
	}
	return &rig{sys: sys, pair: p, ep: ep, server: server, rssIdle: idle}, nil
}

// bridged is implemented by systems whose hosts must sit on the lab's
// internet bridge (the agent, which needs the control plane) instead of
// being joined by their own veth.
type bridged interface{ OnBridge() bool }

// allOnBridge (-bridge) puts every system on the bridge, so the agent can
// be compared with the others over the same underlay path.
var allOnBridge bool

// filterCounter is implemented by systems that can report their packet
// filter's counters (the agent).
type filterCounter interface {
	FilterCounts(ctx context.Context) (filterCounts, error)
}

// addPair creates the two hosts of system idx: bare namespaces joined by a
// veth (10.99.idx.1-2), or hosts on the internet bridge for a bridged
// system (203.0.113.30+2·idx and the next address).
func addPair(l *lab.Lab, sys System, idx int) (a, b *lab.Host, err error) {
	if br, ok := sys.(bridged); allOnBridge || ok && br.OnBridge() {
		if idx > 30 {
			return nil, nil, fmt.Errorf("too many systems for the bridge addresses")
		}
		if a, err = l.AddServerHost(fmt.Sprintf("s%da", idx), netip.AddrFrom4([4]byte{203, 0, 113, byte(30 + 2*idx)})); err != nil {
			return nil, nil, err
		}
		if b, err = l.AddServerHost(fmt.Sprintf("s%db", idx), netip.AddrFrom4([4]byte{203, 0, 113, byte(31 + 2*idx)})); err != nil {
			return nil, nil, err
		}
		return a, b, nil
	}
	if a, err = l.AddHost(fmt.Sprintf("s%da", idx)); err != nil {
		return nil, nil, err
	}
	if b, err = l.AddHost(fmt.Sprintf("s%db", idx)); err != nil {
		return nil, nil, err
	}
	pa := netip.MustParsePrefix(fmt.Sprintf("10.99.%d.1/24", idx))
	pb := netip.MustParsePrefix(fmt.Sprintf("10.99.%d.2/24", idx))
	if _, err := l.Connect(a, b, pa, pb, 0); err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

func measure(ctx context.Context, r *rig, secs, pings int) (sample, error) {
	var s sample
	var err error
	if s.rtt, err = pingMedian(ctx, r.pair.A, r.ep.B, pings); err != nil {
		return s, err
	}
	fc, counted := r.sys.(filterCounter)
	var fw0 filterCounts
	if counted {
		if fw0, err = fc.FilterCounts(ctx); err != nil {
			return s, err
		}
	}
	procs := append([]int{r.server.Pid()}, r.ep.PIDs...)
	sys0, err := cpuOf(r.ep.PIDs)
	if err != nil {
		return s, err
	}
	all0, err := cpuOf(procs)
	if err != nil {
		return s, err
	}
	var bytes, clientCPU float64
	for _, streams := range []int{1, 4} {
		gbps, n, cpu, err := iperf(ctx, r.pair.A, r.ep.B, 5201, secs, streams)
		if err != nil {
			return s, err
		}
		bytes += n
		clientCPU += cpu
		if streams == 1 {
			s.tcp1 = gbps
		} else {
			s.tcp4 = gbps
		}
	}
	sys1, err := cpuOf(r.ep.PIDs)
	if err != nil {
		return s, err
	}
	all1, err := cpuOf(procs)
	if err != nil {
		return s, err
	}
	if counted {
		fw1, err := fc.FilterCounts(ctx)
		if err != nil {
			return s, err
		}
		s.fw = fw1.sub(fw0)
	}
	gb := bytes / 1e9
	s.sysCPUPerGB = (sys1 - sys0) / gb
	s.rigCPUPerGB = (all1 - all0 + clientCPU) / gb
	if s.rssAfter, err = maxRSS(r.ep.PIDs); err != nil {
		return s, err
	}
	return s, nil
}

func col(runs []sample, f func(sample) float64) []float64 {
	v := make([]float64, len(runs))
	for i, s := range runs {
		v[i] = f(s)
	}
	return v
}

func spread(v []float64, prec int) string {
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, median(v), prec, lo, prec, hi)
}

// loadavg returns the 1-minute load average as text.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func render(rigs []*rig, rounds, secs, pings int, load0, load1 string) string {
	var b strings.Builder
	host, _ := os.Hostname()
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(&b, "Run %s on %s (kernel %s, %d CPUs, %s); %d rounds alternating the systems, "+
		"iperf3 %d s per transfer, %d pings per round; load average %s at start, %s at end "+
		"(other work on the machine shares the CPUs). Medians, (min–max) over rounds.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), host, strings.TrimSpace(string(kernel)),
		runtime.NumCPU(), runtime.Version(), rounds, secs, pings, load0, load1)
	b.WriteString("| system | TCP 1 stream Gbit/s | TCP 4 streams Gbit/s | ping RTT ms | CPU-s/GB (system procs) | CPU-s/GB (system + iperf3) | RSS idle MB | RSS after transfer MB |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rigs {
		na := func(v []float64, prec int) string {
			if len(r.ep.PIDs) == 0 {
				return "—"
			}
			return fmt.Sprintf("%.*f", prec, median(v))
		}
		idle := "—"
		if len(r.ep.PIDs) > 0 {
			idle = fmt.Sprintf("%.1f", r.rssIdle)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.3f | %s | %.2f | %s | %s |\n", r.sys.Name(),
			spread(col(r.runs, func(s sample) float64 { return s.tcp1 }), 2),
			spread(col(r.runs, func(s sample) float64 { return s.tcp4 }), 2),
			median(col(r.runs, func(s sample) float64 { return s.rtt })),
			na(col(r.runs, func(s sample) float64 { return s.sysCPUPerGB }), 2),
			median(col(r.runs, func(s sample) float64 { return s.rigCPUPerGB })),
			idle,
			na(col(r.runs, func(s sample) float64 { return s.rssAfter }), 1))
	}
	if len(rigs) > 1 {
		base := rigs[0]
		for _, r := range rigs[1:] {
			fmt.Fprintf(&b, "\n%s / %s: TCP 1 stream %.2f×, 4 streams %.2f×, RTT %.2f×.", r.sys.Name(), base.sys.Name(),
				median(col(r.runs, func(s sample) float64 { return s.tcp1 }))/median(col(base.runs, func(s sample) float64 { return s.tcp1 })),
				median(col(r.runs, func(s sample) float64 { return s.tcp4 }))/median(col(base.runs, func(s sample) float64 { return s.tcp4 })),
				median(col(r.runs, func(s sample) float64 { return s.rtt }))/median(col(base.runs, func(s sample) float64 { return s.rtt })))
		}
		b.WriteString("\n")
	}
	renderFilter(&b, rigs)
	return b.String()
}

// renderFilter adds, for every X / X-nofw pair of systems in the run, the
// ratios filter on / off (of the medians, and the median and range of the
// per-round ratios: both systems ran in the same round, minutes apart at
// most), and the filter counters of every system that reports them.
func renderFilter(b *strings.Builder, rigs []*rig) {
	byKey := map[string]*rig{}
	for _, r := range rigs {
		byKey[r.key] = r
	}
	perRound := func(on, off *rig, f func(sample) float64) string {
		n := min(len(on.runs), len(off.runs))
		v := make([]float64, 0, n)
		for i := range n {
			v = append(v, f(on.runs[i])/f(off.runs[i]))
		}
		if len(v) == 0 {
			return "—"
		}
		return spread(v, 3)
	}
	ratio := func(on, off *rig, f func(sample) float64) string {
		return fmt.Sprintf("%.3f", median(col(on.runs, f))/median(col(off.runs, f)))
	}
	header := false
	for _, on := range rigs {
		off, ok := byKey[on.key+"-nofw"]
		if !ok {
			continue
		}
		if !header {
			b.WriteString("\nFilter on / off (ratio of the medians; per-round ratio: median (min–max)):\n\n")
			b.WriteString("| on / off | TCP 1 stream | per round | TCP 4 streams | per round | CPU-s/GB (system procs) | per round |\n")
			b.WriteString("|---|---|---|---|---|---|---|\n")
			header = true
		}
		tcp1 := func(s sample) float64 { return s.tcp1 }
		tcp4 := func(s sample) float64 { return s.tcp4 }
		cpu := func(s sample) float64 { return s.sysCPUPerGB }
		fmt.Fprintf(b, "| %s / %s | %s | %s | %s | %s | %s | %s |\n", on.key, off.key,
			ratio(on, off, tcp1), perRound(on, off, tcp1), ratio(on, off, tcp4), perRound(on, off, tcp4),
			ratio(on, off, cpu), perRound(on, off, cpu))
	}
	header = false
	for _, r := range rigs {
		if _, ok := r.sys.(filterCounter); !ok {
			continue
		}
		if !header {
			b.WriteString("\nPacket filter counters over each round's transfers (both agents, for each other; " +
				"`petrel status --json` peers[].firewall), per round:\n\n")
			b.WriteString("| system | filter in path | in_allowed | out_allowed | in+out dropped |\n|---|---|---|---|---|\n")
			header = true
		}
		var present, in, out, drop []string
		for _, s := range r.runs {
			present = append(present, fmt.Sprint(s.fw.present))
			in = append(in, fmt.Sprint(s.fw.inAllowed))
			out = append(out, fmt.Sprint(s.fw.outAllowed))
			drop = append(drop, fmt.Sprint(s.fw.inDropped+s.fw.outDropped))
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", r.key, strings.Join(present, ", "),
			strings.Join(in, ", "), strings.Join(out, ", "), strings.Join(drop, ", "))
	}
}

const beginMark, endMark = "<!-- dataplane:begin -->", "<!-- dataplane:end -->"

// writeSection replaces the text between the dataplane markers in path
// (appending a marked section if there is none).
func writeSection(path, body string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	section := beginMark + "\n" + body + endMark
	s := string(old)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i >= 0 && j > i {
		s = s[:i] + section + s[j+len(endMark):]
	} else {
		s += "\n" + section + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
