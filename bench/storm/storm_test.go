package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// smoke is a small storm: 50 agents (two infra, teams of 8), churn fast
// enough for a dozen events in a few seconds (every second one a
// deletion and a registration), a policy change every 1.5 s and one
// checkpoint in the middle.
func smoke() config {
	return config{
		Agents: 50, Duration: 5 * time.Second, Churn: 3.6, Replace: 0.5,
		PolicyEvery: 1500 * time.Millisecond, CheckEvery: 3 * time.Second,
		TeamSize: 8, Infra: 0.04, Offline: 200 * time.Millisecond, Setup: 8, Wait: 30 * time.Second, Seed: 7,
	}
}

// storm runs cfg against an in-process server and returns the report.
func storm(t *testing.T, cfg config) *report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srvLog := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := startInproc(ctx, srvLog)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	rep, err := runStorm(ctx, cfg, srv, log)
	if err != nil {
		t.Fatalf("storm: %v", err)
	}
	var b strings.Builder
	rep.print(&b)
	t.Log("\n" + b.String())
	return rep
}

// TestStormDeliversEveryChange is the smoke run: every kind of change
// happens, every change reaches its agents, serials have no gap.
func TestStormDeliversEveryChange(t *testing.T) {
	rep := storm(t, smoke())
	if probs := rep.problems(); len(probs) > 0 {
		t.Fatalf("storm failed its checks:\n  %s", strings.Join(probs, "\n  "))
	}
	if rep.PolicyChanges < 2 || rep.Deleted < 1 || rep.Registered < 1 || rep.Reconnected < 1 {
		t.Errorf("too few changes to prove anything: %d policy changes, %d deleted, %d registered, %d reconnects",
			rep.PolicyChanges, rep.Deleted, rep.Registered, rep.Reconnected)
	}
	if len(rep.Checkpoints) != 3 {
		t.Errorf("%d checkpoints, want start, one in the middle and end", len(rep.Checkpoints))
	}
	for _, k := range []int{kindPolicy, kindDelete, kindRegister} {
		if rep.Latency[kindNames[k]].N == 0 {
			t.Errorf("no delivery of a %s was timed", kindNames[k])
		}
	}
	if rep.LargestMapPeers != rep.Config.Agents-1 {
		t.Errorf("largest map has %d peers, want %d (an infra agent sees everyone)", rep.LargestMapPeers, rep.Config.Agents-1)
	}
}

// TestStormCatchesLostDelta proves the map check can fail: one agent
// drops a delta that removes a peer, and the run must report it.
func TestStormCatchesLostDelta(t *testing.T) {
	cfg := smoke()
	cfg.CheckEvery, cfg.fault = 0, faultApply
	rep := storm(t, cfg)
	mism := 0
	for _, cp := range rep.Checkpoints {
		mism += cp.Mismatches
	}
	if mism != 1 || len(rep.problems()) == 0 {
		t.Fatalf("a dropped delta gave %d mismatches and problems %q; want 1 mismatch and a failed run", mism, rep.problems())
	}
}

// TestStormCatchesSerialGap proves the serial check can fail: one Sync
// message is lost on the wire, and the run must report a gap.
func TestStormCatchesSerialGap(t *testing.T) {
	cfg := smoke()
	cfg.CheckEvery, cfg.fault = 0, faultWire
	rep := storm(t, cfg)
	if rep.Gaps != 1 || len(rep.problems()) == 0 {
		t.Fatalf("a lost message gave %d gaps and problems %q; want 1 gap and a failed run", rep.Gaps, rep.problems())
	}
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.quantile(c.q)
		if got < c.want || float64(got) > float64(c.want)*histGrowth {
			t.Errorf("quantile(%v) = %v, want %v within one bucket (%v)", c.q, got, c.want, histGrowth)
		}
	}
	if s := h.summary(); s.N != 1000 || s.Max != time.Second {
		t.Errorf("summary %+v", s)
	}
	var empty hist
	if empty.quantile(0.5) != 0 {
		t.Error("empty histogram has a quantile")
	}
}
