// Package backoff computes jittered exponential backoff delays for
// reconnect loops (management, signal, relay, ICE retries).
//
// Any package may import it. A Backoff is not safe for concurrent use; give
// each loop its own.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff yields delays growing from Min to Max by Factor, each multiplied
// by a random factor in [1-Jitter, 1+Jitter] (full spread avoids herds).
type Backoff struct {
	Min, Max time.Duration
	Factor   float64 // default 2
	Jitter   float64 // 0..1, default 0.5
	attempt  int
}

// Next returns the delay before the next attempt and advances the sequence.
func (b *Backoff) Next() time.Duration {
	f := b.Factor
	if f <= 1 {
		f = 2
	}
	j := b.Jitter
	if j <= 0 || j > 1 {
		j = 0.5
	}
	d := float64(b.Min)
	for i := 0; i < b.attempt && d < float64(b.Max); i++ {
		d *= f
	}
	if d > float64(b.Max) {
		d = float64(b.Max)
	}
	b.attempt++
	d *= 1 - j + 2*j*rand.Float64()
	if d < 0 {
		d = 0
	}
	return time.Duration(d)
}

// Reset starts the sequence again from Min (call after a success).
func (b *Backoff) Reset() { b.attempt = 0 }

// Jitter returns a uniformly random duration in [0, max).
func Jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(max)))
}
