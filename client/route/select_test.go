package route

import (
	"strings"
	"testing"
	"time"
)

func TestSelect(t *testing.T) {
	t0 := time.Unix(1000, 0)
	up := func(p string, metric int32, direct bool, lat time.Duration) Candidate {
		return Candidate{Peer: p, Connected: true, Direct: direct, Metric: metric, Latency: lat}
	}
	down := func(p string, metric int32) Candidate { return Candidate{Peer: p, Metric: metric} }
	type step struct {
		at     time.Duration
		cands  []Candidate
		want   string
		reason string // substring, optional
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"none", []step{{0, nil, "", "no routing peer"}}},
		{"connected beats metric", []step{{0, []Candidate{down("a", 1), up("b", 9, false, 0)}, "b", ""}}},
		{"direct beats relayed", []step{{0, []Candidate{up("a", 1, false, 0), up("b", 1, true, 0)}, "b", ""}}},
		{"metric", []step{{0, []Candidate{up("a", 5, true, 0), up("b", 2, true, 0)}, "b", ""}}},
		{"latency", []step{{0, []Candidate{up("a", 1, true, 80*time.Millisecond), up("b", 1, true, 10*time.Millisecond)}, "b", ""}}},
		{"unknown latency last", []step{{0, []Candidate{up("a", 1, true, 0), up("b", 1, true, 50*time.Millisecond)}, "b", ""}}},
		{"tie by key", []step{{0, []Candidate{up("b", 1, true, 0), up("a", 1, true, 0)}, "a", ""}}},
		{"failover and no failback on equal terms", []step{
			{0, []Candidate{up("r1", 10, true, 0), up("r2", 10, true, 0)}, "r1", ""},
			{time.Minute, []Candidate{down("r1", 10), up("r2", 10, true, 0)}, "r2", "failover"},
			{2 * time.Minute, []Candidate{up("r1", 10, true, 0), up("r2", 10, true, 0)}, "r2", "sticky"},
		}},
		{"failback when the rule says so (lower metric), after hold-down", []step{
			{0, []Candidate{up("r1", 5, true, 0), up("r2", 10, true, 0)}, "r1", ""},
			{time.Minute, []Candidate{down("r1", 5), up("r2", 10, true, 0)}, "r2", "failover"},
			{time.Minute + time.Second, []Candidate{up("r1", 5, true, 0), up("r2", 10, true, 0)}, "r2", "less than"},
			{time.Minute + holdDown, []Candidate{up("r1", 5, true, 0), up("r2", 10, true, 0)}, "r1", "lower metric"},
		}},
		{"small latency gain is not clearly better", []step{
			{0, []Candidate{up("a", 1, true, 30*time.Millisecond), up("b", 1, true, 40*time.Millisecond)}, "a", ""},
			{time.Minute, []Candidate{up("a", 1, true, 30*time.Millisecond), up("b", 1, true, 25*time.Millisecond)}, "a", "sticky"},
			{2 * time.Minute, []Candidate{up("a", 1, true, 90*time.Millisecond), up("b", 1, true, 25*time.Millisecond)}, "b", "latency"},
		}},
		{"flapping preferred peer: each loss fails over, each return waits out the hold-down", []step{
			{0, []Candidate{up("r1", 1, true, 0), up("r2", 2, true, 0)}, "r1", ""},
			{1 * time.Second, []Candidate{down("r1", 1), up("r2", 2, true, 0)}, "r2", "failover"},
			{2 * time.Second, []Candidate{up("r1", 1, true, 0), up("r2", 2, true, 0)}, "r2", "sticky"},
			{3 * time.Second, []Candidate{down("r1", 1), up("r2", 2, true, 0)}, "r2", ""},
			{4 * time.Second, []Candidate{up("r1", 1, true, 0), up("r2", 2, true, 0)}, "r2", "sticky"},
			{5 * time.Second, []Candidate{down("r1", 1), up("r2", 2, true, 0)}, "r2", ""},
			{20 * time.Second, []Candidate{up("r1", 1, true, 0), up("r2", 2, true, 0)}, "r1", "lower metric"},
		}},
		{"all down keeps the previous choice", []step{
			{0, []Candidate{up("r1", 2, true, 0), down("r2", 1)}, "r1", ""},
			{time.Second, []Candidate{down("r1", 2), down("r2", 1)}, "r1", "keeping"},
		}},
		{"chosen peer leaves the map", []step{
			{0, []Candidate{up("r1", 1, true, 0), up("r2", 2, true, 0)}, "r1", ""},
			{time.Second, []Candidate{up("r2", 2, true, 0)}, "r2", "left"},
		}},
		{"relayed current replaced by direct", []step{
			{0, []Candidate{up("r1", 1, false, 0), down("r2", 1)}, "r1", ""},
			{time.Minute, []Candidate{up("r1", 1, false, 0), up("r2", 1, true, 0)}, "r2", "direct"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSelector()
			for i, st := range tt.steps {
				got := s.Select("10.0.0.0/24", st.cands, t0.Add(st.at))
				if got.Peer != st.want {
					t.Fatalf("step %d: chose %q (%s), want %q", i, got.Peer, got.Reason, st.want)
				}
				if st.reason != "" && !strings.Contains(got.Reason, st.reason) {
					t.Fatalf("step %d: reason %q does not mention %q", i, got.Reason, st.reason)
				}
			}
		})
	}
}
