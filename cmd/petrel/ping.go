package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"petrel/internal/cmdline"
	"petrel/proto/daemonpb"
)

func newPingCmd(g *globalFlags) *cobra.Command {
	var (
		count    int
		interval time.Duration
		timeout  time.Duration
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "ping PEER",
		Short: "Ping a peer over the overlay (name, FQDN or IP) and show the path that answered",
		Long: `Ping a peer over the overlay (name, FQDN or IP) and show the path that
answered each probe (p2p or relay), then a summary: probes sent and
received, loss, and round-trip times. With --json, one JSON document at the
end (docs/cli.md). Exit status 1 when no probe was answered.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completePeers(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 1 {
				return usageErr(fmt.Errorf("--count %d: want at least 1", count))
			}
			if interval <= 0 || timeout <= 0 {
				return usageErr(errors.New("--interval and --timeout must be positive"))
			}
			cl, closeFn, err := dialDaemon(g.socketPath())
			if err != nil {
				return err
			}
			defer closeFn()
			wait := time.Duration(count)*(interval+timeout) + 10*time.Second
			ctx, cancel := withTimeout(wait)
			defer cancel()
			stream, err := cl.Ping(ctx, &daemonpb.PingRequest{Peer: args[0], Count: int32(count),
				IntervalMs: interval.Milliseconds(), TimeoutMs: timeout.Milliseconds()})
			if err != nil {
				return rpcErrAfter(err, wait)
			}
			out := cmd.OutOrStdout()
			p := cmdline.NewPalette(out)
			res := pingResult{Peer: args[0], Probes: []pingProbe{}}
			for {
				r, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return rpcErrAfter(err, wait)
				}
				pr := pingProbe{Seq: r.Seq, RttMs: r.RttMs, Path: r.Path, Error: r.Error}
				res.IP = r.Ip
				res.Probes = append(res.Probes, pr)
				if !asJSON {
					printProbe(out, p, args[0], r.Ip, pr)
				}
			}
			res.Summary = summarize(res.Probes)
			if asJSON {
				if err := writeJSON(out, res); err != nil {
					return err
				}
			} else {
				printPingSummary(out, p, res)
			}
			if res.Summary.Received == 0 {
				return &exitError{1, fmt.Errorf("no reply from %s", args[0])}
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&count, "count", "c", 3, "number of probes")
	cmd.Flags().DurationVarP(&interval, "interval", "i", time.Second, "time between probes")
	cmd.Flags().DurationVarP(&timeout, "timeout", "W", 5*time.Second, "time to wait for each reply")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document with every probe and the summary at the end")
	return cmd
}

// pingResult is the output of `petrel ping --json` (docs/cli.md).
type pingResult struct {
	Peer    string      `json:"peer"` // as given on the command line
	IP      string      `json:"ip"`   // the overlay address probed; "" when no probe ran
	Probes  []pingProbe `json:"probes"`
	Summary pingSummary `json:"summary"`
}

type pingProbe struct {
	Seq   int32   `json:"seq"`
	RttMs float64 `json:"rtt_ms"`          // 0 when unanswered
	Path  string  `json:"path"`            // p2p|relay; "" when unanswered
	Error string  `json:"error,omitempty"` // why unanswered
}

type pingSummary struct {
	Sent        int            `json:"sent"`
	Received    int            `json:"received"`
	LossPercent float64        `json:"loss_percent"`
	RttMinMs    float64        `json:"rtt_min_ms"` // the rtt fields are 0 when nothing was received
	RttAvgMs    float64        `json:"rtt_avg_ms"`
	RttMaxMs    float64        `json:"rtt_max_ms"`
	Paths       map[string]int `json:"paths"` // answered probes per path
}

func summarize(probes []pingProbe) pingSummary {
	s := pingSummary{Sent: len(probes), Paths: map[string]int{}}
	var sum float64
	for _, p := range probes {
		if p.Error != "" {
			continue
		}
		if s.Received == 0 || p.RttMs < s.RttMinMs {
			s.RttMinMs = p.RttMs
		}
		s.RttMaxMs = math.Max(s.RttMaxMs, p.RttMs)
		sum += p.RttMs
		s.Received++
		s.Paths[p.Path]++
	}
	if s.Sent > 0 {
		s.LossPercent = math.Round(float64(s.Sent-s.Received)*1000/float64(s.Sent)) / 10
	}
	if s.Received > 0 {
		s.RttAvgMs = math.Round(sum*1000/float64(s.Received)) / 1000
	}
	return s
}

func printProbe(w io.Writer, p cmdline.Palette, peer, ip string, pr pingProbe) {
	if pr.Error != "" {
		fmt.Fprintf(w, "%s seq=%d: %s\n", ip, pr.Seq, p.Red(pr.Error))
		return
	}
	fmt.Fprintf(w, "reply from %s (%s) seq=%d time=%.2f ms via %s\n", ip, peer, pr.Seq, pr.RttMs, paintPath(p, pr.Path))
}

func paintPath(p cmdline.Palette, path string) string {
	if path == "p2p" {
		return p.Green(path)
	}
	return p.Yellow(path)
}

// printPingSummary is ping(8)'s closing lines, plus the paths that answered.
func printPingSummary(w io.Writer, p cmdline.Palette, r pingResult) {
	s := r.Summary
	fmt.Fprintf(w, "\n--- %s ping statistics ---\n", r.Peer)
	loss := fmt.Sprintf("%g%% loss", s.LossPercent)
	switch {
	case s.Received == 0:
		loss = p.Red(loss)
	case s.Received < s.Sent:
		loss = p.Yellow(loss)
	}
	fmt.Fprintf(w, "%d sent, %d received, %s\n", s.Sent, s.Received, loss)
	if s.Received == 0 {
		return
	}
	names := make([]string, 0, len(s.Paths))
	for name := range s.Paths {
		names = append(names, name)
	}
	slices.Sort(names) // p2p before relay
	paths := make([]string, 0, len(names))
	for _, name := range names {
		if len(names) == 1 {
			paths = append(paths, paintPath(p, name))
		} else {
			paths = append(paths, fmt.Sprintf("%s %d", paintPath(p, name), s.Paths[name]))
		}
	}
	fmt.Fprintf(w, "rtt min/avg/max = %.2f/%.2f/%.2f ms, path %s\n", s.RttMinMs, s.RttAvgMs, s.RttMaxMs, strings.Join(paths, ", "))
}

// completePeers completes a peer argument with the names and FQDNs of the
// daemon's peers; nothing (and no file names) without a daemon.
func completePeers(g *globalFlags) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var st *daemonpb.StatusResponse
		err := callDaemon(g, 2*time.Second, func(ctx context.Context, cl daemonpb.DaemonClient) (err error) {
			st, err = cl.Status(ctx, &daemonpb.StatusRequest{})
			return err
		})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, p := range st.Peers {
			for _, name := range []string{p.Name, p.Fqdn} {
				if name != "" && strings.HasPrefix(name, toComplete) {
					out = append(out, cobra.CompletionWithDesc(name, p.Ip+" "+p.Status))
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
