// Package ratelimit is a token-bucket rate limiter keyed by an arbitrary
// comparable key (a source address, a user name, a token ID), with a
// bounded table so a flood of distinct keys cannot exhaust memory.
//
// Each key owns a bucket of at most burst tokens that refills at rate tokens
// per second; Allow takes one token, or reports how long until one is
// available. When the table is full, a new key evicts the least recently
// used one. An evicted key starts again with a full bucket, so resetting
// one key's limit costs a caller maxKeys requests under other keys: size
// maxKeys well above the number of keys that are active within
// burst/rate seconds.
//
// Any package may import it. A *Limiter is safe for concurrent use; a nil
// *Limiter allows everything (a convenient "limit disabled").
package ratelimit

import (
	"container/list"
	"fmt"
	"math"
	"sync"
	"time"
)

// Limiter is a set of token buckets, one per key. Create it with New.
type Limiter[K comparable] struct {
	rate    float64 // tokens per second
	burst   float64
	maxKeys int

	mu  sync.Mutex
	now func() time.Time
	m   map[K]*list.Element // values are *bucket
	lru list.List           // front: most recently used
}

type bucket[K comparable] struct {
	key    K
	tokens float64
	last   time.Time // when tokens was computed
}

// New returns a limiter that allows each key rate requests per second on
// average and burst requests at once, tracking at most maxKeys keys. It
// panics unless rate > 0, burst >= 1 and maxKeys >= 1 (a programming error;
// callers validate their configuration first).
func New[K comparable](rate float64, burst, maxKeys int) *Limiter[K] {
	if !(rate > 0) || math.IsInf(rate, 1) || burst < 1 || maxKeys < 1 {
		panic(fmt.Sprintf("ratelimit: invalid limits rate=%v burst=%d maxKeys=%d", rate, burst, maxKeys))
	}
	return &Limiter[K]{
		rate:    rate,
		burst:   float64(burst),
		maxKeys: maxKeys,
		now:     time.Now,
		m:       make(map[K]*list.Element),
	}
}

// WithClock makes the limiter read the time from now (tests pass a fake
// clock). Call it before the limiter is shared; it returns l.
func (l *Limiter[K]) WithClock(now func() time.Time) *Limiter[K] {
	l.mu.Lock()
	l.now = now
	l.mu.Unlock()
	return l
}

// Allow takes one token from key's bucket. It reports whether the request
// may proceed and, when it may not, how long until the next token.
func (l *Limiter[K]) Allow(key K) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.bucket(key, now)
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = math.Min(l.burst, b.tokens+elapsed.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration(math.Ceil((1 - b.tokens) / l.rate * float64(time.Second)))
	return false, wait
}

// Check reports whether Allow would succeed for key now, without taking a
// token or starting to track key. Use it to refuse work up front for a key
// whose failures are counted with Allow afterwards (a source guessing
// passwords is stopped before its next guess is checked).
func (l *Limiter[K]) Check(key K) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, found := l.m[key]
	if !found {
		return true, 0
	}
	b := e.Value.(*bucket[K])
	tokens := b.tokens
	if elapsed := l.now().Sub(b.last); elapsed > 0 {
		tokens = math.Min(l.burst, tokens+elapsed.Seconds()*l.rate)
	}
	if tokens >= 1 {
		return true, 0
	}
	return false, time.Duration(math.Ceil((1 - tokens) / l.rate * float64(time.Second)))
}

// bucket returns key's bucket, creating it full (and evicting the least
// recently used key if the table is full). Called with l.mu held.
func (l *Limiter[K]) bucket(key K, now time.Time) *bucket[K] {
	if e, ok := l.m[key]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*bucket[K])
	}
	var b *bucket[K]
	if l.lru.Len() >= l.maxKeys {
		e := l.lru.Back()
		b = e.Value.(*bucket[K])
		delete(l.m, b.key)
		l.lru.MoveToFront(e)
		l.m[key] = e
	} else {
		b = &bucket[K]{}
		l.m[key] = l.lru.PushFront(b)
	}
	*b = bucket[K]{key: key, tokens: l.burst, last: now}
	return b
}

// Len returns the number of keys tracked.
func (l *Limiter[K]) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}
