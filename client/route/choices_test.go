package route

import (
	"strings"
	"testing"
	"time"
)

// TestChoices: Choices reports each network's routing peer with the time
// and reason of the switch that made it the choice; staying with it
// (sticky, hold-down) changes neither.
func TestChoices(t *testing.T) {
	t0 := time.Unix(1000, 0)
	up := func(p string, metric int32) Candidate {
		return Candidate{Peer: p, Connected: true, Direct: true, Metric: metric}
	}
	down := func(p string, metric int32) Candidate { return Candidate{Peer: p, Metric: metric} }
	const n1, n2 = "10.0.0.0/24", "10.1.0.0/24"
	s := NewSelector()
	s.Select(n1, []Candidate{up("r1", 1), up("r2", 2)}, t0)
	s.Select(n2, []Candidate{up("r3", 1)}, t0)
	s.Select(n1, []Candidate{down("r1", 1), up("r2", 2)}, t0.Add(time.Minute))
	s.Select(n1, []Candidate{up("r1", 1), up("r2", 2)}, t0.Add(time.Minute+time.Second)) // hold-down: stays
	s.Select(n2, []Candidate{up("r3", 1)}, t0.Add(2*time.Minute))                        // same: stays

	got := s.Choices()
	if len(got) != 2 {
		t.Fatalf("choices = %v, want two networks", got)
	}
	if c := got[n1]; c.Peer != "r2" || !c.Since.Equal(t0.Add(time.Minute)) || !strings.HasPrefix(c.Reason, "failover") {
		t.Errorf("%s: %+v, want r2 since the failover at t0+1m, with its reason", n1, c)
	}
	if c := got[n2]; c.Peer != "r3" || !c.Since.Equal(t0) || c.Reason != "connected, direct" {
		t.Errorf("%s: %+v, want r3 since t0, first reason", n2, c)
	}
	// The result is a copy, and forgotten networks leave it.
	got[n1] = Active{}
	s.Forget(func(n string) bool { return n == n1 })
	if got := s.Choices(); len(got) != 1 || got[n1].Peer != "r2" {
		t.Errorf("after Forget: %v, want only %s (through r2)", got, n1)
	}
	// No candidates: no choice.
	s.Select(n1, nil, t0.Add(3*time.Minute))
	if got := s.Choices(); len(got) != 0 {
		t.Errorf("after losing every candidate: %v, want none", got)
	}
}
