// Command connect is the connection-time benchmark (bench/connect/run.sh,
// root): in a network lab it starts two Petrel agents (TUN mode) behind
// NATs with a real petrel-server and relay instances, and measures the time
// from starting both agents to the first ICMP echo reply through the
// tunnel, over N trials, for a direct pair (EIM+EIM) and a relayed pair
// (EIM+symmetric). It also reports the agents' idle RSS and, from the
// agents' logs, when each connection phase happened, to show where the
// time goes. Results are printed as Markdown for docs/bench/connect.md.
//
// Each trial restarts both agents on their saved state (a re-login, as
// after a reboot), with the NAT mappings flushed; one warm-up start
// registers the peers first.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"petrel/e2e"
	"petrel/lab"
)

func main() {
	trials := flag.Int("trials", 20, "trials per mode")
	modes := flag.String("modes", "direct,relayed", "modes to run: direct (EIM+EIM), relayed (EIM+symmetric)")
	logDir := flag.String("logs", "", "keep the processes' logs in this directory")
	debug := flag.Bool("debug", false, "agents log at debug level (with -logs)")
	idle := flag.Duration("idle", 5*time.Second, "how long the pair idles before RSS is read")
	flag.Parse()
	log.SetFlags(log.Ltime)
	if os.Geteuid() != 0 {
		log.Fatal("bench/connect: needs root (network namespaces, TUN)")
	}
	if *logDir != "" {
		if err := os.MkdirAll(*logDir, 0o755); err != nil {
			log.Fatal(err)
		}
	}
	stop := lab.TeardownOnSignal("", nil)
	defer stop()
	ctx := context.Background()
	binDir, err := os.MkdirTemp("", "petrel-bench-connect-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(binDir)
	bins, err := e2e.Build(ctx, binDir)
	if err != nil {
		log.Fatal(err)
	}
	var results []*result
	for _, m := range strings.Split(*modes, ",") {
		var extra []string
		if *debug {
			extra = []string{"--log-level", "debug"}
		}
		r, err := runMode(ctx, bins, strings.TrimSpace(m), *trials, *logDir, *idle, extra)
		if err != nil {
			log.Fatalf("%s: %v", m, err)
		}
		results = append(results, r)
	}
	report(os.Stdout, results, *trials)
}

// result is one mode's measurements.
type result struct {
	mode      string
	firstPing []time.Duration // start → first echo reply
	p2p       []time.Duration // start → status path p2p (direct mode)
	phases    map[string][]time.Duration
	rssKiB    []int // a, b after idling
	paths     map[string]int
}

func runMode(ctx context.Context, bins e2e.Binaries, mode string, n int, logDir string, idle time.Duration, extra []string) (*result, error) {
	kb := lab.EIM
	switch mode {
	case "direct":
	case "relayed":
		kb = lab.Symmetric
	default:
		return nil, fmt.Errorf("unknown mode %q", mode)
	}
	if logDir != "" {
		logDir = filepath.Join(logDir, mode)
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			return nil, err
		}
	}
	l, err := lab.New(lab.Options{LogDir: logDir})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	dir, err := os.MkdirTemp("", "petrel-bench-connect-"+mode+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	c, err := e2e.NewCluster(ctx, l, bins, dir)
	if err != nil {
		return nil, err
	}
	a, err := c.NewAgentHost(ctx, "a", lab.EIM, extra...)
	if err != nil {
		return nil, err
	}
	b, err := c.NewAgentHost(ctx, "b", kb, extra...)
	if err != nil {
		return nil, err
	}
	want := map[string]string{"direct": "p2p", "relayed": "relay"}[mode]
	// Warm-up: register both and learn b's overlay address.
	if err := startBoth(a, b); err != nil {
		return nil, err
	}
	sb, err := b.WaitPeerPath(ctx, 90*time.Second, "a", want)
	if err != nil {
		return nil, err
	}
	if _, err := a.WaitPeerPath(ctx, 90*time.Second, "b", want); err != nil {
		return nil, err
	}
	dst := net.ParseIP(sb.OverlayIP())
	if err := stopBoth(a, b); err != nil {
		return nil, err
	}

	r := &result{mode: mode, phases: map[string][]time.Duration{}, paths: map[string]int{}}
	for i := 0; i < n; i++ {
		for _, h := range []*lab.Host{a.Host, b.Host} {
			if err := h.FlushConntrack(); err != nil {
				return nil, err
			}
		}
		p, err := newProber(a.Host)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := startBoth(a, b); err != nil {
			p.Close()
			return nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		at, err := p.firstReply(pctx, dst, 10*time.Millisecond)
		cancel()
		p.Close()
		if err != nil {
			return nil, fmt.Errorf("trial %d: no echo reply: %w\n%s", i, err, a.Proc.Output())
		}
		r.firstPing = append(r.firstPing, at.Sub(t0))
		st, err := a.WaitStatus(ctx, 60*time.Second, "peer b on "+want, func(s *e2e.Status) bool {
			pb := s.Peer("b")
			return pb != nil && pb.Path == want
		})
		if err != nil {
			return nil, err
		}
		if mode == "direct" {
			r.p2p = append(r.p2p, time.Since(t0))
		}
		r.paths[st.Peer("b").Path]++
		for name, at := range phases(a.Proc.Output()) {
			r.phases[name] = append(r.phases[name], at.Sub(t0))
		}
		if i == n-1 {
			time.Sleep(idle)
			for _, ag := range []*e2e.Agent{a, b} {
				kib, err := ag.RSSKiB()
				if err != nil {
					return nil, err
				}
				r.rssKiB = append(r.rssKiB, kib)
			}
		}
		log.Printf("%s trial %d: first reply %s", mode, i+1, r.firstPing[i].Round(time.Millisecond))
		if err := stopBoth(a, b); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func startBoth(a, b *e2e.Agent) error {
	if err := a.Start(); err != nil {
		return err
	}
	return b.Start()
}

func stopBoth(a, b *e2e.Agent) error {
	errA, errB := a.Stop(), b.Stop()
	if errA != nil {
		return errA
	}
	return errB
}

// phaseMsgs are the agent log messages that mark connection phases.
var phaseMsgs = []string{"WireGuard device up", "signal connected", "relay home connected", "using relay", "direct path up"}

// phases returns the first time each phase message appears in the agent's
// output (slog text lines: time=RFC3339 level=... msg="...").
func phases(out string) map[string]time.Time {
	got := map[string]time.Time{}
	for _, line := range strings.Split(out, "\n") {
		ts, rest, ok := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		if !ok || !strings.HasPrefix(line, "time=") {
			continue
		}
		for _, m := range phaseMsgs {
			if _, seen := got[m]; seen || !strings.Contains(rest, `msg="`+m+`"`) {
				continue
			}
			if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				got[m] = t
			}
		}
	}
	return got
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func report(w *os.File, rs []*result, n int) {
	fmt.Fprintf(w, "\n| pair | trials | first ping p50 | p95 | max | path | agent RSS idle (a / b) |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		var paths []string
		for p, k := range r.paths {
			paths = append(paths, fmt.Sprintf("%s ×%d", p, k))
		}
		rss := "-"
		if len(r.rssKiB) == 2 {
			rss = fmt.Sprintf("%.1f / %.1f MB", float64(r.rssKiB[0])/1024, float64(r.rssKiB[1])/1024)
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s |\n", r.mode, len(r.firstPing), ms(pct(r.firstPing, .5)),
			ms(pct(r.firstPing, .95)), ms(pct(r.firstPing, 1)), strings.Join(paths, ", "), rss)
	}
	for _, r := range rs {
		fmt.Fprintf(w, "\nPhases of agent a, %s (time since both agents were started; p50 / p95):\n\n| phase | p50 | p95 |\n|---|---|---|\n", r.mode)
		for _, m := range phaseMsgs {
			if d := r.phases[m]; len(d) > 0 {
				fmt.Fprintf(w, "| %s (%d/%d trials) | %s | %s |\n", m, len(d), n, ms(pct(d, .5)), ms(pct(d, .95)))
			}
		}
		fmt.Fprintf(w, "| first echo reply | %s | %s |\n", ms(pct(r.firstPing, .5)), ms(pct(r.firstPing, .95)))
		if len(r.p2p) > 0 {
			fmt.Fprintf(w, "| status shows p2p (polled) | %s | %s |\n", ms(pct(r.p2p, .5)), ms(pct(r.p2p, .95)))
		}
	}
}
