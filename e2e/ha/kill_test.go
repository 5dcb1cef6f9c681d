package ha

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestKillInstance: three instances on one PostgreSQL behind a round-robin
// proxy, simulated agents (300 by default) and three real agents, a policy
// change every 500 ms. Each trial kills (SIGKILL) the instance holding the
// most connections while the admin loop runs and real agents ping each
// other; its agents must re-sync on the others and hold the change
// committed before the kill (time measured from the kill), no serial may
// go backwards, no ping may be lost, and the restarted instance rejoins
// (it serves the next change). In the first trial a new real agent joins
// and must reach a peer whose signal session is on another instance
// (cross-instance signal). At the end every agent's applied map equals a
// fresh one. PETREL_HA_TRIALS (default 3) and PETREL_HA_AGENTS set the
// size; `make bench` runs 10 trials and records the numbers.
func TestKillInstance(t *testing.T) {
	trials := envInt("PETREL_HA_TRIALS", 3)
	r := newRig(t, envInt("PETREL_HA_AGENTS", 300), 3)
	var all []time.Duration
	var rows []string
	var lastKill time.Time
	for trial := range trials {
		// Each kill meets agents whose streams have lived for a while, as
		// a crash in production does: the agent's reconnect backoff starts
		// over only after a stream lived 30 s, so trials in quicker
		// succession would measure the backoff of the previous kill.
		if !lastKill.IsZero() {
			time.Sleep(time.Until(lastKill.Add(31 * time.Second)))
		}
		conns := r.proxy.perBackend()
		victim := r.inst[0]
		for _, in := range r.inst {
			if conns[in.idx] > conns[victim.idx] {
				victim = in
			}
		}
		pings := []*pinger{
			r.startPing(r.real[0], r.real[1], 8*time.Second),
			r.startPing(r.real[1], r.real[2], 8*time.Second),
		}
		time.Sleep(2 * time.Second)
		seq := int(r.changer.acked.Load())
		r.sims.armTrial(seq)
		killedAt := time.Now()
		lastKill = killedAt
		victim.kill()
		// Every agent whose stream broke must be back (bounded wait; the
		// numbers are reported, not judged).
		stillOut := func() (n int) {
			for _, a := range r.sims.agents {
				a.mu.Lock()
				if !a.brokeAt.IsZero() && a.backAt.IsZero() {
					n++
				}
				a.mu.Unlock()
			}
			return n
		}
		time.Sleep(3 * time.Second)
		if !waitUntil(2*time.Minute, func() bool { return stillOut() == 0 }) {
			t.Fatalf("trial %d: %d agents of the killed instance never re-synced", trial, stillOut())
		}
		res := r.sims.collect(killedAt)
		if res.affected == 0 {
			t.Fatalf("trial %d: no agent was on the killed instance %d (connections %v)", trial, victim.idx, conns)
		}
		all = append(all, res.back...)
		row := fmt.Sprintf("| %d | %d | %d | %s |", trial+1, victim.idx, res.affected, summarize(res.back))
		rows = append(rows, row)
		t.Logf("trial %d: killed instance %d (connections %v): %d agents moved, back in sync %s",
			trial, victim.idx, conns, res.affected, summarize(res.back))
		if trial == 0 {
			r.joinAcrossInstances()
		}
		for _, p := range pings {
			p.check(t)
		}
		victim.start(t)
		r.barrier(fmt.Sprintf("trial %d: after the restart", trial))
	}
	if bw := r.sims.backwards(); len(bw) > 0 {
		t.Fatalf("serials went backwards: %s", strings.Join(bw, "; "))
	}
	if n, err := r.changer.failures(); n > 0 {
		t.Fatalf("%d admin changes failed; last: %v", n, err)
	}
	r.changer.pause()
	r.barrier("the end")
	bad, err := r.sims.verify(ctxFor(t, 5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Fatalf("%d agents' applied maps differ from fresh maps: %s", len(bad), strings.Join(bad[:min(len(bad), 5)], "; "))
	}
	t.Logf("all trials: back in sync %s", summarize(all))
	report(t, append(append([]string{
		fmt.Sprintf("kill -9, %d simulated agents, %d trials, %s", len(r.sims.agents), trials, time.Now().UTC().Format(time.RFC3339)),
		"| trial | killed | agents moved | kill → holding the pre-kill change |", "|---|---|---|---|"}, rows...),
		fmt.Sprintf("| all | | %d | %s |", len(all), summarize(all)))...)
}

// joinAcrossInstances starts a new real agent and requires a direct path
// to a peer whose signal session is on another instance than its own: the
// connection offers crossed instances. The proxy does not choose the
// instance; when the agent's signal session lands where every peer's is,
// the agent is restarted (its connections go to the next instances).
func (r *rig) joinAcrossInstances() {
	t := r.t
	ctx := ctxFor(t, 5*time.Minute)
	name := fmt.Sprintf("real%d", len(r.real))
	n := startReal(t, r.petrel, r.dir, name, "http://"+r.proxy.addr(), r.setupKey)
	r.real = append(r.real, n)
	for attempt := 1; ; attempt++ {
		r.meshUp(n)
		st, err := n.status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mine, err := r.presence(ctx, st.PublicKey)
		if err != nil {
			t.Fatalf("presence of %s: %v", n.name, err)
		}
		for _, p := range st.Peers {
			theirs, err := r.presence(ctx, p.PublicKey)
			if err == nil && theirs != mine && p.Path == "p2p" {
				t.Logf("%s (signal on instance %s) reached %s (signal on %s) directly", n.name, mine, p.Name, theirs)
				return
			}
		}
		if attempt == 5 {
			t.Fatalf("%s: after %d starts its signal session was always on the instance of every peer (%s)", n.name, attempt, mine)
		}
		t.Logf("%s: signal on the same instance as every peer (%s); restarting it", n.name, mine)
		// An agent opens the same number of connections each start: move
		// the proxy's turn by one, or its signal connection would land on
		// the same instance again.
		r.proxy.next.Add(1)
		n.stop()
		n = startReal(t, r.petrel, r.dir, name, "http://"+r.proxy.addr(), r.setupKey)
		r.real[len(r.real)-1] = n
	}
}
