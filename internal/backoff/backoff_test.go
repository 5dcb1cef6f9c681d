package backoff

import (
	"testing"
	"time"
)

// within reports whether d lies in [base(1-j), base(1+j)], allowing for
// the rounding of the float computation to whole nanoseconds.
func within(d, base time.Duration, j float64) bool {
	lo := time.Duration(float64(base)*(1-j)) - 1
	hi := time.Duration(float64(base)*(1+j)) + 1
	return d >= lo && d <= hi
}

// With almost no jitter the sequence is Min, Min·Factor, … capped at Max,
// and Reset starts it again from Min.
func TestGrowsByFactorToMax(t *testing.T) {
	const j = 1e-9
	for _, tc := range []struct {
		name string
		b    Backoff
		want []float64 // milliseconds
	}{
		{"factor 2", Backoff{Min: 100 * time.Millisecond, Max: time.Second, Factor: 2, Jitter: j},
			[]float64{100, 200, 400, 800, 1000, 1000, 1000}},
		{"factor 1.5", Backoff{Min: 100 * time.Millisecond, Max: 400 * time.Millisecond, Factor: 1.5, Jitter: j},
			[]float64{100, 150, 225, 337.5, 400, 400}},
		{"factor unset means 2", Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond, Jitter: j},
			[]float64{10, 20, 40, 50, 50}},
		{"factor 1 means 2", Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond, Factor: 1, Jitter: j},
			[]float64{10, 20, 40, 50, 50}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			for round := range 2 {
				for i, ms := range tc.want {
					want := time.Duration(ms * float64(time.Millisecond))
					if got := b.Next(); !within(got, want, 1e-6) {
						t.Fatalf("round %d attempt %d: %v, want %v", round, i, got, want)
					}
				}
				b.Reset()
			}
		})
	}
}

// Many attempts past the cap stay capped (no overflow to a negative or
// huge delay).
func TestStaysCappedForever(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 30 * time.Second, Jitter: 0.5}
	for i := range 10000 {
		if d := b.Next(); d < 0 || d > 45*time.Second {
			t.Fatalf("attempt %d: %v outside [0, Max·1.5]", i, d)
		}
	}
}

// Every delay lies in [d(1-J), d(1+J)] for its base delay d (Max once
// capped), and the jitter spreads over the whole range, both below and
// above d; an unset or out-of-range Jitter means 0.5.
func TestJitterBounds(t *testing.T) {
	const samples = 2000
	for _, tc := range []struct {
		name   string
		jitter float64 // as configured
		j      float64 // in effect
	}{
		{"jitter 0.2", 0.2, 0.2},
		{"jitter 1", 1, 1},
		{"jitter unset", 0, 0.5},
		{"jitter above 1", 3, 0.5},
		{"jitter negative", -0.1, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bases := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
			lo := make([]time.Duration, len(bases))
			hi := make([]time.Duration, len(bases))
			b := Backoff{Min: time.Second, Max: 5 * time.Second, Jitter: tc.jitter}
			for n := range samples {
				b.Reset()
				for i, base := range bases {
					d := b.Next()
					if !within(d, base, tc.j) {
						t.Fatalf("attempt %d: %v outside [%v, %v]", i, d,
							time.Duration(float64(base)*(1-tc.j)), time.Duration(float64(base)*(1+tc.j)))
					}
					if n == 0 || d < lo[i] {
						lo[i] = d
					}
					if n == 0 || d > hi[i] {
						hi[i] = d
					}
				}
			}
			// The lowest and highest of 2000 uniform samples lie in the
			// outer quarters of the range (each fails with p = 0.75^2000).
			for i, base := range bases {
				quarter := time.Duration(float64(base) * tc.j / 2)
				if lo[i] > base-quarter || hi[i] < base+quarter {
					t.Errorf("attempt %d: delays spread over [%v, %v] only, want close to %v±%v", i, lo[i], hi[i], base, 2*quarter)
				}
			}
		})
	}
}

func TestJitter(t *testing.T) {
	if Jitter(0) != 0 || Jitter(-time.Second) != 0 {
		t.Fatal("Jitter of a non-positive max must be 0")
	}
	var lo, hi time.Duration = time.Second, 0
	for range 2000 {
		d := Jitter(time.Second)
		if d < 0 || d >= time.Second {
			t.Fatalf("Jitter(1s) = %v", d)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo > 250*time.Millisecond || hi < 750*time.Millisecond {
		t.Errorf("Jitter(1s) spread over [%v, %v] only", lo, hi)
	}
}
