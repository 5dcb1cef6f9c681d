package ha

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestFrozenDatabase: PostgreSQL frozen with SIGSTOP for 10 s. Every
// instance must fence itself (end its agents' streams: the agents see
// their streams end), and once the database runs again every agent must
// be back on a live stream holding the current state, the instances must
// serve a new change, and a restarted instance must rejoin. Tunnels
// between real agents lose no pings meanwhile (their cached maps keep
// them up). Times are reported, not judged: fence time per agent from the
// freeze, convergence per agent from the thaw.
func TestFrozenDatabase(t *testing.T) {
	r := newRig(t, envInt("PETREL_HA_FREEZE_AGENTS", 60), 2)
	r.changer.pause()
	r.barrier("before the freeze")
	ping := r.startPing(r.real[0], r.real[1], 24*time.Second)
	time.Sleep(2 * time.Second)

	r.sims.armTrial(int(r.changer.acked.Load()))
	frozenAt := time.Now()
	if err := r.pg.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			_ = r.pg.signal(syscall.SIGCONT)
		}
	}
	defer thaw()
	broken := func() (n int) {
		for _, a := range r.sims.agents {
			a.mu.Lock()
			if !a.brokeAt.IsZero() {
				n++
			}
			a.mu.Unlock()
		}
		return n
	}
	waitUntil(10*time.Second, func() bool { return broken() == len(r.sims.agents) })
	var fenced []time.Duration
	for _, a := range r.sims.agents {
		a.mu.Lock()
		if !a.brokeAt.IsZero() {
			fenced = append(fenced, a.brokeAt.Sub(frozenAt))
		}
		a.mu.Unlock()
	}
	if len(fenced) != len(r.sims.agents) {
		t.Fatalf("only %d of %d agents' streams ended while the database was frozen: not every instance fenced itself", len(fenced), len(r.sims.agents))
	}
	time.Sleep(time.Until(frozenAt.Add(10 * time.Second)))
	thawAt := time.Now()
	thaw()

	stillOut := func() (n int) {
		for _, a := range r.sims.agents {
			a.mu.Lock()
			if a.backAt.IsZero() {
				n++
			}
			a.mu.Unlock()
		}
		return n
	}
	if !waitUntil(2*time.Minute, func() bool { return stillOut() == 0 }) {
		t.Fatalf("%d agents never came back after the thaw", stillOut())
	}
	res := r.sims.collect(thawAt)
	took := r.barrier("after the thaw")
	ping.check(t)

	// A restarted instance rejoins and serves the next change.
	r.inst[1].stop()
	r.inst[1].start(t)
	r.barrier("after a restart")

	t.Logf("fenced (stream ended) after the freeze: %s", summarize(fenced))
	t.Logf("back on a live stream after the thaw: %s; the next change reached every agent in %v", summarize(res.back), took.Round(time.Millisecond))
	report(t, fmt.Sprintf("PostgreSQL frozen 10 s (SIGSTOP), %d simulated agents, %s", len(r.sims.agents), time.Now().UTC().Format(time.RFC3339)),
		"| | p50 / p95 / max |", "|---|---|",
		fmt.Sprintf("| freeze → agent's stream closed by the fence | %s |", summarize(fenced)),
		fmt.Sprintf("| thaw → agent back on a live stream | %s |", summarize(res.back)),
		fmt.Sprintf("| first change after the thaw reaches every agent | %v |", took.Round(time.Millisecond)))
}
