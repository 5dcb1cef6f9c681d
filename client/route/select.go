package route

import (
	"cmp"
	"slices"
	"time"
)

// HA selection. Several routing peers may serve one network; exactly one of
// them carries it at a time, because WireGuard routes a prefix to a single
// peer. The choice ranks candidates by: connected, then direct path, then
// lower metric, then lower latency (then public key, so ties are stable).
// It is sticky: a connected current choice is replaced only by a candidate
// of a better class (connected beats not, direct beats relayed), a lower
// metric, or a latency better by both latencyMargin and latencyFactor —
// and, unless the current one failed, not within holdDown of the last
// switch, so a flapping peer cannot make the route flap with it.

const (
	// holdDown is the minimum time between two switches that are not failovers.
	holdDown = 10 * time.Second
	// latencyMargin and latencyFactor: a latency switch needs the candidate
	// faster by at least this much and by this factor.
	latencyMargin = 20 * time.Millisecond
	latencyFactor = 1.5
)

// Candidate is one routing peer of a network as the agent sees it now.
type Candidate struct {
	Peer      string        // public key
	Connected bool          // a live WireGuard session and a path
	Direct    bool          // the path is direct (p2p), not relayed
	Metric    int32         // lower is preferred
	Latency   time.Duration // 0 = unknown
}

// Choice is the selected routing peer of a network and why.
type Choice struct {
	Peer   string // "" when there is no candidate
	Reason string
}

// Selector keeps the sticky choice per network. Not safe for concurrent
// use; the engine calls it from its one planning path.
type Selector struct {
	cur map[string]selection
}

type selection struct {
	peer   string
	since  time.Time
	reason string // why peer was chosen when it became the choice
}

// Active is a network's current choice as Choices reports it.
type Active struct {
	Peer   string    // public key
	Since  time.Time // when it became the choice (the now of that Select)
	Reason string    // why it was chosen then ("failover: ...", "lower metric", ...)
}

// NewSelector returns a selector with no choices yet.
func NewSelector() *Selector { return &Selector{cur: map[string]selection{}} }

// Select picks the routing peer for network among cands at time now.
func (s *Selector) Select(network string, cands []Candidate, now time.Time) Choice {
	if len(cands) == 0 {
		delete(s.cur, network)
		return Choice{Reason: "no routing peer"}
	}
	ranked := slices.Clone(cands)
	slices.SortFunc(ranked, rank)
	best := ranked[0]
	prev, had := s.cur[network]
	var cur *Candidate
	if had {
		for i := range cands {
			if cands[i].Peer == prev.peer {
				cur = &cands[i]
				break
			}
		}
	}
	choose := func(c Candidate, reason string) Choice {
		if !had || prev.peer != c.Peer {
			s.cur[network] = selection{peer: c.Peer, since: now, reason: reason}
		}
		return Choice{Peer: c.Peer, Reason: reason}
	}
	switch {
	case cur == nil && had:
		return choose(best, "previous routing peer left; "+describe(best))
	case cur == nil:
		return choose(best, describe(best))
	case cur.Peer == best.Peer:
		return choose(best, describe(best))
	case !cur.Connected && best.Connected:
		return choose(best, "failover: previous routing peer is down; "+describe(best))
	case !cur.Connected:
		return choose(*cur, "no routing peer is connected; keeping the previous one")
	}
	why := clearlyBetter(best, *cur)
	if why == "" {
		return choose(*cur, "sticky: "+describe(*cur))
	}
	if now.Sub(prev.since) < holdDown {
		return choose(*cur, "sticky: "+why+" but switched less than "+holdDown.String()+" ago")
	}
	return choose(best, why)
}

// Choices returns the current choice of every network Select keeps state
// for, keyed by the network as passed to Select. A network the planner no
// longer installs (refused, or an exit node not in use) may still be
// listed: callers match it against the plan.
func (s *Selector) Choices() map[string]Active {
	out := make(map[string]Active, len(s.cur))
	for n, c := range s.cur {
		out[n] = Active{Peer: c.peer, Since: c.since, Reason: c.reason}
	}
	return out
}

// Forget drops the state of networks not in keep.
func (s *Selector) Forget(keep func(network string) bool) {
	for n := range s.cur {
		if !keep(n) {
			delete(s.cur, n)
		}
	}
}

// clearlyBetter says why b should replace connected a ("" if it should not).
func clearlyBetter(b, a Candidate) string {
	switch {
	case b.Direct && !a.Direct:
		return "a direct path beats a relayed one"
	case b.Direct != a.Direct:
		return ""
	case b.Metric < a.Metric:
		return "lower metric"
	case b.Metric > a.Metric:
		return ""
	case b.Latency > 0 && a.Latency > 0 && a.Latency-b.Latency >= latencyMargin &&
		float64(a.Latency) >= latencyFactor*float64(b.Latency):
		return "clearly lower latency"
	}
	return ""
}

func describe(c Candidate) string {
	switch {
	case !c.Connected:
		return "best available (not connected)"
	case c.Direct:
		return "connected, direct"
	default:
		return "connected, relayed"
	}
}

func rank(a, b Candidate) int {
	return cmp.Or(
		-cmp.Compare(b2i(a.Connected), b2i(b.Connected)),
		-cmp.Compare(b2i(a.Direct), b2i(b.Direct)),
		cmp.Compare(a.Metric, b.Metric),
		cmp.Compare(latencyKey(a.Latency), latencyKey(b.Latency)),
		cmp.Compare(a.Peer, b.Peer),
	)
}

// latencyKey orders unknown latency after any known one.
func latencyKey(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Duration(1<<63 - 1)
	}
	return d
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
