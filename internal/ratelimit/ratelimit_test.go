package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBurstThenRefill(t *testing.T) {
	clk := newClock()
	l := New[string](2, 3, 10).WithClock(clk.now) // 2/s, burst 3
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, retry := l.Allow("a")
	if ok || retry != 500*time.Millisecond {
		t.Fatalf("over the burst: ok=%v retry=%v, want refused with 500ms", ok, retry)
	}
	clk.advance(250 * time.Millisecond) // half a token
	if ok, retry := l.Allow("a"); ok || retry != 250*time.Millisecond {
		t.Fatalf("half refilled: ok=%v retry=%v, want refused with 250ms", ok, retry)
	}
	clk.advance(250 * time.Millisecond)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("a refilled token was refused")
	}
	// Refill never exceeds the burst.
	clk.advance(time.Hour)
	n := 0
	for {
		if ok, _ := l.Allow("a"); !ok {
			break
		}
		n++
	}
	if n != 3 {
		t.Fatalf("after a long pause %d allowed, want the burst of 3", n)
	}
}

func TestKeysAreIndependent(t *testing.T) {
	clk := newClock()
	l := New[string](1, 1, 10).WithClock(clk.now)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("a refused")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("a allowed twice with burst 1")
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("b limited by a's bucket")
	}
}

func TestTableIsBounded(t *testing.T) {
	clk := newClock()
	l := New[int](1, 1, 100).WithClock(clk.now)
	for i := range 10_000 {
		l.Allow(i)
		if l.Len() > 100 {
			t.Fatalf("table grew to %d keys, bound is 100", l.Len())
		}
	}
	// The most recently used keys are still limited; the oldest were evicted.
	if ok, _ := l.Allow(9_999); ok {
		t.Fatal("recent key 9999 lost its bucket")
	}
	if ok, _ := l.Allow(0); !ok {
		t.Fatal("evicted key 0 was not given a fresh bucket")
	}
}

func TestRecentlyUsedKeySurvivesEviction(t *testing.T) {
	clk := newClock()
	l := New[string](1, 1, 3).WithClock(clk.now)
	l.Allow("hot") // its only token
	for i := range 10 {
		// Touched between newcomers, "hot" stays; were it evicted, it
		// would come back with a fresh token.
		if ok, _ := l.Allow("hot"); ok {
			t.Fatalf("round %d: a key in constant use was evicted (its limit reset)", i)
		}
		l.Allow(fmt.Sprint("cold", i))
	}
}

func TestNilLimiterAllows(t *testing.T) {
	var l *Limiter[string]
	if ok, retry := l.Allow("x"); !ok || retry != 0 {
		t.Fatal("nil limiter refused")
	}
	if l.Len() != 0 {
		t.Fatal("nil limiter has keys")
	}
}

func TestNewRejectsBadLimits(t *testing.T) {
	for _, c := range []struct {
		rate           float64
		burst, maxKeys int
	}{{0, 1, 1}, {-1, 1, 1}, {1, 0, 1}, {1, 1, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%v, %d, %d) did not panic", c.rate, c.burst, c.maxKeys)
				}
			}()
			New[string](c.rate, c.burst, c.maxKeys)
		}()
	}
}

func TestConcurrentUse(t *testing.T) {
	clk := newClock()
	l := New[int](1, 50, 8).WithClock(clk.now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if ok, _ := l.Allow(g); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 8*50 {
		t.Fatalf("allowed %d, want 8 keys × burst 50 = 400", allowed)
	}
}

// Check peeks: it never takes a token nor tracks a new key, and agrees
// with what Allow would answer.
func TestCheckDoesNotConsume(t *testing.T) {
	c := newClock()
	l := New[string](1, 2, 10).WithClock(c.now)
	if ok, _ := l.Check("a"); !ok || l.Len() != 0 {
		t.Fatalf("unknown key: ok %v, tracked %d", ok, l.Len())
	}
	l.Allow("a")
	l.Allow("a")
	for range 3 {
		if ok, wait := l.Check("a"); ok || wait != time.Second {
			t.Fatalf("empty bucket: ok %v wait %v", ok, wait)
		}
	}
	c.advance(time.Second)
	if ok, _ := l.Check("a"); !ok {
		t.Fatal("refilled bucket refused")
	}
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("Check consumed the token")
	}
}
