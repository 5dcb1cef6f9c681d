// Package replay refuses replayed sealed requests. Every request carries
// the sender's clock reading and a random nonce inside its sealed body; a
// Guard accepts a (key, nonce) once, and only with a timestamp within its
// window of the server's clock, so a captured message is useless after the
// window and a replay within it is refused.
//
// Any package may import it. A *Guard is safe for concurrent use.
package replay

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// NonceLen is the length of a request nonce.
const NonceLen = 16

// Errors Check returns.
var (
	ErrReplayed = errors.New("request replayed")
	ErrStale    = errors.New("request timestamp outside the accepted window")
	ErrNoNonce  = errors.New("request has no timestamp or nonce")
	ErrFull     = errors.New("too many recent requests to remember; retry shortly")
)

type entry struct {
	key   [32]byte
	nonce [NonceLen]byte
}

// Guard remembers the nonces seen within the window. Memory is bounded by
// max; when full, new requests are refused (ErrFull) until old nonces age
// out, rather than forgetting nonces still inside the window.
type Guard struct {
	window time.Duration
	max    int
	now    func() time.Time

	mu    sync.Mutex
	seen  map[entry]struct{}
	byExp map[int64][]entry // second after which a nonce can no longer be replayed
	swept int64
}

// New returns a Guard accepting timestamps within ±window of now and
// remembering at most max nonces.
func New(window time.Duration, max int, now func() time.Time) *Guard {
	if now == nil {
		now = time.Now
	}
	return &Guard{window: window, max: max, now: now, seen: map[entry]struct{}{}, byExp: map[int64][]entry{}}
}

// Check accepts the request (key, timestamp, nonce) once.
func (g *Guard) Check(key [32]byte, ts time.Time, nonce []byte) error {
	if len(nonce) != NonceLen || ts.IsZero() {
		return ErrNoNonce
	}
	now := g.now()
	if d := now.Sub(ts); d > g.window || d < -g.window {
		return fmt.Errorf("%w: %v off the server's clock (window ±%v)", ErrStale, d.Round(time.Second), g.window)
	}
	e := entry{key: key}
	copy(e.nonce[:], nonce)
	// Once now passes ts+window the timestamp check refuses the message,
	// so the nonce need not be remembered any longer.
	exp := ts.Add(g.window).Unix() + 1
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweep(now.Unix())
	if _, dup := g.seen[e]; dup {
		return ErrReplayed
	}
	if len(g.seen) >= g.max {
		return ErrFull
	}
	g.seen[e] = struct{}{}
	g.byExp[exp] = append(g.byExp[exp], e)
	return nil
}

// sweep forgets nonces whose timestamps left the window. Called with g.mu
// held; at most once a second.
func (g *Guard) sweep(now int64) {
	if now == g.swept {
		return
	}
	g.swept = now
	for exp, es := range g.byExp {
		if exp < now {
			for _, e := range es {
				delete(g.seen, e)
			}
			delete(g.byExp, exp)
		}
	}
}

// Len is the number of nonces remembered.
func (g *Guard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}
