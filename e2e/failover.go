package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"time"
)

// FailoverTrialsEnv sets how many HA failover trials TestSiteRouteHAFailover
// runs (default 2); with more than 2 it logs p50/p95 of the failover time.
const FailoverTrialsEnv = "PETREL_FAILOVER_TRIALS"

// FailoverTrials reads FailoverTrialsEnv (default def).
func FailoverTrials(def int) int {
	if n, err := strconv.Atoi(os.Getenv(FailoverTrialsEnv)); err == nil && n > 0 {
		return n
	}
	return def
}

// FailoverRig is a client reaching a network that several routing peers
// (one HA group) serve, masqueraded, with a UDP Echo inside the network.
type FailoverRig struct {
	Client  *Agent
	Routers []*Agent
	Network string                // e.g. "10.20.0.0/24"
	Target  netip.AddrPort        // the Echo inside Network
	Via     map[netip.Addr]string // each router's masquerade address as the echo sees it -> router name
	Logf    func(format string, args ...any)
}

// FailoverResult is one trial.
type FailoverResult struct {
	Killed string        // the routing peer the client had chosen, SIGKILLed
	Took   time.Duration // from the kill until an answer came back
	Via    string        // the router that carried the first answer after the kill
	// Switched is when the client's `petrel routes --json` first showed
	// another routing peer chosen (polled every 200 ms; 0 = not seen).
	Switched time.Duration
	Reason   string // the chosen route's reason then
}

// ProbeEvery is the probe interval of a failover trial (each probe waits
// this long for its answer before the next is sent).
const ProbeEvery = 100 * time.Millisecond

// Run does n trials. Each waits until every router is up, the client sees
// them all (one chosen and installed, the others standby) and traffic
// flows; then SIGKILLs the chosen one, probes every ProbeEvery until an
// answer arrives (deadline 60 s) and restarts the killed agent on its
// state dir. Deadlines are failures; durations are only measured.
func (r *FailoverRig) Run(ctx context.Context, n int) ([]FailoverResult, error) {
	p, err := NewProber(r.Client.Host, false, "")
	if err != nil {
		return nil, err
	}
	defer p.Close()
	var res []FailoverResult
	for i := 0; i < n; i++ {
		chosen, err := r.ready(ctx, p)
		if err != nil {
			return res, fmt.Errorf("trial %d: %w", i+1, err)
		}
		var victim *Agent
		for _, ag := range r.Routers {
			if ag.Name == chosen {
				victim = ag
			}
		}
		if victim == nil {
			return res, fmt.Errorf("trial %d: chosen routing peer %q is not one of the rig's", i+1, chosen)
		}
		if err := victim.Kill(); err != nil {
			return res, err
		}
		start := time.Now()
		switched := r.watchSwitch(ctx, chosen, start)
		var via netip.AddrPort
		err = poll(ctx, 60*time.Second, 0, func() bool {
			via, err = p.Probe(r.Target, ProbeEvery)
			return err == nil
		})
		took := time.Since(start)
		if err != nil {
			return res, fmt.Errorf("trial %d: after SIGKILL of %s no answer from %s: %w", i+1, chosen, r.Target, err)
		}
		tr := <-switched
		tr.Killed, tr.Took, tr.Via = chosen, took, r.Via[via.Addr()]
		if tr.Via == "" {
			tr.Via = via.Addr().String()
		}
		r.Logf("trial %d: killed %s, traffic flows again via %s after %v (routes showed the switch after %v: %q)",
			i+1, chosen, tr.Via, took.Round(time.Millisecond), tr.Switched.Round(time.Millisecond), tr.Reason)
		if tr.Via == chosen {
			return res, fmt.Errorf("trial %d: an answer came through the killed %s", i+1, chosen)
		}
		res = append(res, tr)
		if err := victim.Start(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// watchSwitch polls the client's routes every 200 ms until a peer other
// than killed is chosen for the network (for up to 60 s) and sends the
// time since start (0 if never seen).
func (r *FailoverRig) watchSwitch(ctx context.Context, killed string, start time.Time) <-chan FailoverResult {
	ch := make(chan FailoverResult, 1)
	go func() {
		var res FailoverResult
		_ = poll(ctx, 60*time.Second, 200*time.Millisecond, func() bool {
			rs, err := r.Client.Routes(ctx)
			if c := ChosenRoute(rs, r.Network); err == nil && c != nil && c.PeerName != killed {
				res.Switched, res.Reason = time.Since(start), c.Reason
				return true
			}
			return false
		})
		ch <- res
	}()
	return ch
}

// ready waits until every router runs, the client sees each connected,
// one route of the network chosen and installed and the others standby,
// and the target answers; it returns the chosen router's name.
func (r *FailoverRig) ready(ctx context.Context, p *Prober) (string, error) {
	st, err := r.Client.WaitStatus(ctx, 90*time.Second, "routing peers connected, one chosen", func(s *Status) bool {
		for _, ag := range r.Routers {
			ps := s.Peer(ag.Name)
			if !ag.Alive() || ps == nil || ps.Status != "connected" {
				return false
			}
			rt := s.Route(r.Network, ag.Name)
			if rt == nil || !(rt.Chosen && rt.State == "installed" || !rt.Chosen && rt.State == "standby") {
				return false
			}
		}
		return ChosenRoute(s.Routes, r.Network) != nil
	})
	if err != nil {
		return "", err
	}
	chosen := ChosenRoute(st.Routes, r.Network)
	if _, err := p.WaitSource(ctx, r.Target, 30*time.Second, Anything); err != nil {
		return "", fmt.Errorf("before the kill (chosen %s): %w", chosen.PeerName, err)
	}
	return chosen.PeerName, nil
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100).
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(k, len(s)-1))]
}
