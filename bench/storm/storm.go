package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// runStorm sets up the account and the agents on srv, runs the storm and
// returns the report. The report is returned (with its problems) even when
// checks fail; an error means the run itself could not be carried out.
func runStorm(ctx context.Context, cfg config, srv serverHandle, log *slog.Logger) (*report, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	r := newRun(ctx, cfg, srv, log)
	defer r.close()
	if err := r.dial(); err != nil {
		return nil, err
	}
	rep := &report{Config: cfg, Topology: r.describeTopology(), Separate: srv.Separate()}
	t := time.Now()
	log.Info("setting up", "agents", cfg.Agents, "conns", cfg.Conns)
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	rep.SetupTime = time.Since(t)
	log.Info("all agents synced", "took", rep.SetupTime.Round(time.Millisecond))
	err = r.storm(ctx, rep)
	r.fill(rep)
	return rep, err
}

// cpuWindow accumulates process CPU time over wall time.
type cpuWindow struct {
	CPU  time.Duration `json:"cpu_ns"`
	Wall time.Duration `json:"wall_ns"`
}

func (w *cpuWindow) add(a, b procStats, wall time.Duration) {
	w.CPU += time.Duration(b.CPU - a.CPU)
	w.Wall += wall
}

// Cores is the average number of cores used.
func (w cpuWindow) Cores() float64 {
	if w.Wall <= 0 {
		return 0
	}
	return w.CPU.Seconds() / w.Wall.Seconds()
}

// storm runs the measured part: a checkpoint that starts the steady state,
// then segments of churn and policy changes, each ended by a checkpoint.
func (r *run) storm(ctx context.Context, rep *report) error {
	cfg := r.cfg
	cp, err := r.checkpoint(ctx, "start", 0)
	if err != nil {
		return err
	}
	rep.Checkpoints = append(rep.Checkpoints, cp)
	steadySrv, steadySelf, steadyAt := cp.Server, cp.Agents, time.Now()
	if cfg.fault != faultNone {
		r.agents[0].armed.Store(true)
	}
	r.storming.Store(true)
	var churnEvery time.Duration
	if cfg.Churn > 0 {
		churnEvery = time.Duration(float64(time.Minute) / (float64(cfg.Agents) * cfg.Churn))
	}
	var active time.Duration
	nextPolicy, nextChurn, replaceAcc := cfg.PolicyEvery, churnEvery, 0.0
	for active < cfg.Duration {
		seg := cfg.Duration - active
		if cfg.CheckEvery > 0 {
			seg = min(seg, cfg.CheckEvery)
		}
		segEnd, base, start := active+seg, active, time.Now()
		srv0, err := r.srv.Stats(ctx, false)
		if err != nil {
			return err
		}
		self0 := sampleProc(false)
		for {
			next, what := segEnd, "end"
			if nextPolicy <= next {
				next, what = nextPolicy, "policy"
			}
			if churnEvery > 0 && nextChurn <= next {
				next, what = nextChurn, "churn"
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Until(start.Add(next - base))):
			}
			active = next
			switch what {
			case "policy":
				nextPolicy += cfg.PolicyEvery
				r.spawn(func() {
					if _, err := r.changePolicy(ctx, false); err != nil {
						r.log.Warn("policy change failed", "err", err)
						return
					}
					r.m.policyChanges.Add(1)
				})
				continue
			case "churn":
				nextChurn += churnEvery
				replaceAcc += cfg.Replace
				replace := replaceAcc >= 1
				if replace {
					replaceAcc--
				}
				r.churn(ctx, replace)
				continue
			}
			break
		}
		r.ops.Wait()
		srv1, err := r.srv.Stats(ctx, false)
		if err != nil {
			return err
		}
		wall := time.Since(start)
		rep.ServerStormCPU.add(srv0, srv1, wall)
		rep.AgentsStormCPU.add(self0, sampleProc(false), wall)
		rep.StormTime = active
		if err := r.failure(); err != nil {
			return err
		}
		name := "end"
		if active < cfg.Duration {
			name = fmt.Sprintf("at %v", active.Round(time.Second))
		}
		r.log.Info("checkpoint", "storm_time", active.Round(time.Second),
			"policy_changes", r.m.policyChanges.Load(), "deleted", r.m.deleted.Load(), "reconnected", r.m.reconnected.Load())
		cp, err := r.checkpoint(ctx, name, active)
		if err != nil {
			return err
		}
		rep.Checkpoints = append(rep.Checkpoints, cp)
	}
	last := rep.Checkpoints[len(rep.Checkpoints)-1]
	wall := time.Since(steadyAt)
	rep.ServerSteadyCPU.add(steadySrv, last.Server, wall)
	rep.AgentsSteadyCPU.add(steadySelf, last.Agents, wall)
	return nil
}

// spawn runs an operation of the storm in its own goroutine.
func (r *run) spawn(fn func()) {
	r.ops.Add(1)
	go func() {
		defer r.ops.Done()
		fn()
	}()
}

// fail records an error that ends the run at the next checkpoint.
func (r *run) fail(err error) {
	r.fatalMu.Lock()
	defer r.fatalMu.Unlock()
	r.fatal = errors.Join(r.fatal, err)
}

func (r *run) failure() error {
	r.fatalMu.Lock()
	defer r.fatalMu.Unlock()
	return r.fatal
}

// churn picks an idle agent and either reconnects it or replaces it
// (REST DELETE of its peer, then a new agent registered into its team).
func (r *run) churn(ctx context.Context, replace bool) {
	r.mu.Lock()
	slot, a := -1, (*agent)(nil)
	for range 32 {
		i := r.rng.IntN(len(r.agents))
		if c := r.agents[i]; c.fault == faultNone && c.busy.CompareAndSwap(false, true) {
			slot, a = i, c
			break
		}
	}
	off := time.Duration(0)
	if r.cfg.Offline > 0 {
		off = time.Duration(r.rng.Int64N(int64(r.cfg.Offline)))
	}
	r.mu.Unlock()
	if a == nil {
		r.m.skippedChurn.Add(1)
		return
	}
	if replace {
		r.spawn(func() { r.replace(ctx, slot, a) })
	} else {
		r.spawn(func() { r.reconnect(ctx, a, off) })
	}
}

// reconnect disconnects a, keeps it offline for off, then logs it in
// again and reopens its stream (a full map first).
func (r *run) reconnect(ctx context.Context, a *agent, off time.Duration) {
	defer a.busy.Store(false)
	a.stop()
	select {
	case <-ctx.Done():
		return
	case <-time.After(off):
	}
	t := time.Now()
	if err := a.login(ctx, ""); err != nil {
		r.m.loginErrors.Add(1)
		r.log.Warn("re-login failed", "agent", a.host, "err", err)
	}
	r.m.call[nKinds].add(time.Since(t))
	a.start()
	r.m.reconnected.Add(1)
}

// replace deletes a's peer through REST and registers a new agent into
// the same team in its slot.
func (r *run) replace(ctx context.Context, slot int, a *agent) {
	a.deleted.Store(true)
	rec := &mutRec{start: r.now()}
	r.deletions.Store(a.pub, rec)
	err := r.api.do(ctx, "DELETE", "/api/peers/"+a.peerID, nil, nil)
	rec.end.Store(r.now())
	r.m.call[kindDelete].add(time.Duration(rec.end.Load() - rec.start))
	if err != nil {
		// The outcome is unknown (a timed-out request may still be
		// carried out): retire the agent all the same, so the checks
		// follow the server's truth either way.
		r.m.restErrors.Add(1)
		r.log.Warn("delete peer failed", "agent", a.host, "err", err)
	} else {
		r.m.deleted.Add(1)
	}
	a.stop()
	b, err := r.newAgent(a.team)
	if err == nil {
		err = r.register(ctx, b, true)
	}
	if err != nil {
		r.fail(err)
		return
	}
	b.start()
	r.mu.Lock()
	r.agents[slot] = b
	r.mu.Unlock()
	r.m.registered.Add(1)
}

// checkpoint is the state at one pause of the storm.
type checkpoint struct {
	Name           string        `json:"name"`
	StormTime      time.Duration `json:"storm_time_ns"`
	Barrier        int           `json:"barrier_change"`
	BarrierTime    time.Duration `json:"barrier_time_ns"` // until every agent held the barrier change
	BarrierMissing int           `json:"barrier_missing"` // agents without it at the deadline
	Verified       int           `json:"verified"`
	Mismatches     int           `json:"mismatches"`
	VerifyTimeouts int           `json:"verify_timeouts"`
	VerifyTime     time.Duration `json:"verify_time_ns"`
	Server         procStats     `json:"server"` // after GC, once verified
	Agents         procStats     `json:"agents"`
	Load           string        `json:"loadavg"` // /proc/loadavg: other work on the machine
}

// checkpoint runs with the storm paused (no mutation in flight). A
// barrier policy change must reach every agent: deltas of one stream
// arrive in order, so an agent holding it has every earlier change. Then
// every agent re-syncs and its applied map must equal the fresh full map
// the server computes for it. Finally both processes are sampled after a
// GC.
func (r *run) checkpoint(ctx context.Context, name string, at time.Duration) (checkpoint, error) {
	cp := checkpoint{Name: name, StormTime: at}
	seq, err := r.changePolicy(ctx, true)
	if err != nil {
		return cp, err
	}
	r.m.barriers.Add(1)
	cp.Barrier = seq
	t := time.Now()
	deadline := t.Add(r.cfg.Wait)
	for {
		var missing []string
		for _, a := range r.snapshotAgents() {
			if !a.synced(seq) {
				missing = append(missing, a.host)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			cp.BarrierMissing = len(missing)
			r.log.Warn("barrier change not delivered", "change", seq, "agents", len(missing), "first", missing[:min(5, len(missing))])
			break
		}
		select {
		case <-ctx.Done():
			return cp, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	cp.BarrierTime = time.Since(t)
	t = time.Now()
	var verified, mismatches, timeouts atomic.Int64
	_ = r.forEach(64, func(a *agent) error {
		ok, err := a.verify(r.cfg.Wait)
		verified.Add(1)
		switch {
		case err != nil:
			timeouts.Add(1)
			r.log.Warn("verification failed", "agent", a.host, "err", err)
		case !ok:
			mismatches.Add(1)
		}
		return nil
	})
	cp.VerifyTime = time.Since(t)
	cp.Verified, cp.Mismatches, cp.VerifyTimeouts = int(verified.Load()), int(mismatches.Load()), int(timeouts.Load())
	if cp.Server, err = r.srv.Stats(ctx, true); err != nil {
		return cp, err
	}
	cp.Agents = sampleProc(true)
	cp.Load = loadAvg()
	r.log.Info("checkpoint done", "name", name, "barrier", cp.BarrierTime.Round(time.Millisecond), "missing", cp.BarrierMissing,
		"verified", cp.Verified, "mismatches", cp.Mismatches, "timeouts", cp.VerifyTimeouts, "verify", cp.VerifyTime.Round(time.Millisecond),
		"server_goroutines", cp.Server.Goroutines, "server_heap_mib", cp.Server.HeapLive>>20)
	return cp, nil
}
