package main

import (
	"testing"
	"time"
)

func TestPhases(t *testing.T) {
	out := `[management] management ..  logging in
time=2026-11-25T21:07:30.298Z level=INFO msg="WireGuard device up" component=engine
time=2026-11-25T21:07:30.384Z level=INFO msg="using relay" component=peer reason=ice-pending
time=2026-11-25T21:07:31.000Z level=INFO msg="using relay" component=peer reason=ice-timeout
garbage line msg="signal connected"
`
	got := phases(out)
	want := map[string]string{"WireGuard device up": "30.298", "using relay": "30.384"}
	if len(got) != len(want) {
		t.Fatalf("phases %v", got)
	}
	for m, sec := range want {
		if g := got[m].Format("05.000"); g != sec {
			t.Errorf("%s at %s, want %s", m, g, sec)
		}
	}
}

func TestPct(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 20; i++ {
		ds = append(ds, time.Duration(21-i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{.5, 10 * time.Millisecond}, {.95, 19 * time.Millisecond}, {1, 20 * time.Millisecond}, {0, time.Millisecond}} {
		if got := pct(ds, tc.p); got != tc.want {
			t.Errorf("pct(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if pct(nil, .5) != 0 {
		t.Error("pct of nothing")
	}
}
