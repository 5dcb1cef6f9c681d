package replay

import (
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func nonce() []byte {
	b := make([]byte, NonceLen)
	rand.Read(b)
	return b
}

func TestReplayRefused(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	g := New(time.Minute, 100, c.now)
	var k [32]byte
	n := nonce()
	if err := g.Check(k, c.now(), n); err != nil {
		t.Fatal(err)
	}
	if err := g.Check(k, c.now(), n); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay: %v", err)
	}
	var other [32]byte
	other[0] = 1
	if err := g.Check(other, c.now(), n); err != nil {
		t.Fatalf("same nonce, other key: %v", err)
	}
	// Still refused until the timestamp leaves the window; then refused
	// as stale, and the nonce is forgotten.
	c.add(59 * time.Second)
	if err := g.Check(k, c.now().Add(-59*time.Second), n); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay late in the window: %v", err)
	}
	c.add(2 * time.Second)
	if err := g.Check(k, c.now().Add(-61*time.Second), n); !errors.Is(err, ErrStale) {
		t.Fatalf("replay after the window: %v", err)
	}
	if err := g.Check(k, c.now(), nonce()); err != nil {
		t.Fatal(err)
	}
	c.add(3 * time.Minute)
	g.Check(k, c.now(), nonce())
	if g.Len() != 1 {
		t.Fatalf("remembered %d nonces after they aged out, want 1", g.Len())
	}
}

func TestWindowAndBadInput(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	g := New(time.Minute, 100, c.now)
	var k [32]byte
	for _, ts := range []time.Time{c.now().Add(-2 * time.Minute), c.now().Add(2 * time.Minute)} {
		if err := g.Check(k, ts, nonce()); !errors.Is(err, ErrStale) {
			t.Fatalf("ts %v: %v", ts, err)
		}
	}
	for _, n := range [][]byte{nil, make([]byte, 8)} {
		if err := g.Check(k, c.now(), n); !errors.Is(err, ErrNoNonce) {
			t.Fatalf("nonce %x: %v", n, err)
		}
	}
	if err := g.Check(k, time.Time{}, nonce()); !errors.Is(err, ErrNoNonce) {
		t.Fatalf("zero time: %v", err)
	}
}

func TestBounded(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	g := New(time.Minute, 10, c.now)
	var k [32]byte
	for range 10 {
		if err := g.Check(k, c.now(), nonce()); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Check(k, c.now(), nonce()); !errors.Is(err, ErrFull) {
		t.Fatalf("over the bound: %v", err)
	}
	c.add(2*time.Minute + time.Second)
	if err := g.Check(k, c.now(), nonce()); err != nil {
		t.Fatalf("after aging out: %v", err)
	}
}
