package engine

import (
	"testing"
	"time"
)

// The liveness rules on an injected clock: each step feeds the state what
// the probe loop or signal would at that second, then checks the verdict.
func TestLivenessVerdict(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type step struct {
		at   float64
		do   func(l *liveState, now time.Time)
		hs   float64 // handshake at (seconds from t0); -1: none
		want string
	}
	poll := func(rx uint64) func(*liveState, time.Time) {
		return func(l *liveState, now time.Time) { l.observe(now, rx, true) }
	}
	sent := func(l *liveState, now time.Time) { l.sent(now) }
	lost := func(l *liveState, now time.Time) { l.lostOne(now) }
	answered := func(l *liveState, now time.Time) { l.answered(now) }
	report := func(l *liveState, now time.Time) { l.reportOffline(now) }
	clear := func(l *liveState, _ time.Time) { l.clearReport() }
	none := func(*liveState, time.Time) {}
	tests := []struct {
		name  string
		steps []step
	}{
		{"talking peer stays online", []step{
			{0, poll(100), 0, ""},
			{1, sent, 0, ""},
			{1.001, answered, 0, ""},
			{40, poll(200), 0, ""},
			{60, poll(300), 0, ""},
			{61, none, 0, ""},
		}},
		{"probe unanswered for 15 s", []step{
			{0, poll(100), 0, ""},
			{1, poll(200), 0, ""}, // heard after 0
			{5, sent, 0, ""},
			{7, lost, 0, ""},
			{19.9, poll(200), 0, ""},
			{20, poll(200), 0, OfflineNoReply},
		}},
		{"three echoes lost in a row", []step{
			{0, poll(100), 0, ""},
			{2, sent, 0, ""},
			{4, lost, 0, ""},
			{5, sent, 0, ""},
			{7, lost, 0, ""},
			{8, sent, 0, ""},
			{10, lost, 0, OfflineNoReply},
		}},
		{"a passive keepalive answers a probe whose echo the policy dropped", []step{
			{0, poll(100), 0, ""},
			{1, sent, 0, ""},
			{3, lost, 0, ""},
			{10, poll(100), 0, ""},
			{11, poll(132), 0, ""}, // the keepalive, 10 s after the probe
			{16, none, 0, ""},
		}},
		{"the answer clears the verdict", []step{
			{0, poll(100), 0, ""},
			{1, sent, 0, ""},
			{16, none, 0, OfflineNoReply},
			{17, poll(100), 0, OfflineNoReply},
			{18, poll(400), 0, ""},
		}},
		{"signal says offline: offline at once, despite a fresh handshake", []step{
			{0, poll(100), 0, ""},
			{1, report, 1, OfflineSignal},
			{2, poll(100), 1, OfflineSignal},
		}},
		{"a packet heard after the report clears it", []step{
			{0, poll(100), 0, ""},
			{1, poll(100), 0, ""},
			{1.5, report, 0, OfflineSignal},
			{2, poll(150), 0, OfflineSignal}, // may have arrived before the report
			{3, poll(200), 0, ""},
		}},
		{"a signal message from the peer clears the report", []step{
			{0, report, -1, OfflineSignal},
			{1, clear, -1, ""},
		}},
		{"silent for keepalive + rekey timeout", []step{
			{0, poll(100), 0, ""},
			{29, poll(100), 0, ""},
			{30, poll(100), 0, OfflineSilent},
		}},
		{"handshake older than reject-after-time", []step{
			{179, none, 0, ""},
			{180, none, 0, OfflineHandshake},
		}},
		{"a peer never heard and never probed is not judged", []step{
			{0, poll(0), -1, ""},
			{100, poll(0), -1, ""},
		}},
		{"a probe that failed locally owes no reply", []step{
			{0, poll(100), 0, ""},
			{1, sent, 0, ""},
			{1, func(l *liveState, now time.Time) { l.unsent(now) }, 0, ""},
			{20, none, 0, ""},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l liveState
			for i, s := range tc.steps {
				now := at(s.at)
				s.do(&l, now)
				var hs time.Time
				if s.hs >= 0 {
					hs = at(s.hs)
				}
				if got := l.verdict(now, hs); got != s.want {
					t.Fatalf("step %d (t=%gs): verdict %q, want %q", i, s.at, got, s.want)
				}
			}
		})
	}
}

// A lost probe asks signal about the peer at most once per silenceLimit.
func TestLivenessAsksSignalOnce(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	var l liveState
	l.sent(t0)
	asks := 0
	for s := 2; s < 40; s++ {
		if _, ask := l.lostOne(t0.Add(time.Duration(s) * time.Second)); ask {
			asks++
		}
	}
	// at 2 s, 17 s and 32 s
	if asks != 3 {
		t.Fatalf("asked signal %d times in 38 s, want 3", asks)
	}
}

// Latency is shown only when measured on the current path and younger
// than latencyMaxAge, with its age.
func TestLatencyOf(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	r := &remote{}
	if _, _, ok := latencyOf(r, "relay", t0); ok {
		t.Fatal("latency without a measurement")
	}
	r.probe.last = probeResult{rtt: 400 * time.Microsecond, path: "relay", at: t0}
	rtt, age, ok := latencyOf(r, "relay", t0.Add(3*time.Second))
	if !ok || rtt != 400*time.Microsecond || age != 3*time.Second {
		t.Fatalf("latencyOf = %v, %v, %v; want 400µs, 3s, true", rtt, age, ok)
	}
	if _, _, ok := latencyOf(r, "p2p", t0.Add(time.Second)); ok {
		t.Error("latency measured on the relay shown for the direct path")
	}
	if _, _, ok := latencyOf(r, "relay", t0.Add(latencyMaxAge+time.Second)); ok {
		t.Error("stale latency shown")
	}
}
