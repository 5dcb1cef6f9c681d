package identity

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
)

// nonceSet remembers the nonces of accepted tokens until those tokens
// expire, so a token (or another token carrying the same nonce) is
// accepted once. Memory is bounded by max: when full and nothing has
// expired, new nonces are refused (ErrUnavailable) rather than old ones
// forgotten while their tokens are still valid.
//
// internal/replay does the same for sealed requests, but keys nonces by
// a fixed-size (peer key, nonce) pair and ages them by a clock window;
// here each nonce lives exactly as long as its token.
type nonceSet struct {
	max int

	mu   sync.Mutex
	seen map[[32]byte]time.Time // hash of the nonce → when its token expires
}

func newNonceSet(max int) *nonceSet {
	return &nonceSet{max: max, seen: map[[32]byte]time.Time{}}
}

// add records nonce until the given time, or refuses a nonce still
// remembered.
func (s *nonceSet) add(nonce string, until, now time.Time) error {
	k := sha256.Sum256([]byte(nonce))
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.seen[k]; ok && !now.After(exp) {
		return fmt.Errorf("%w: a token with this nonce was accepted before", ErrNonceReplayed)
	}
	if len(s.seen) >= s.max {
		for h, exp := range s.seen {
			if now.After(exp) {
				delete(s.seen, h)
			}
		}
		if len(s.seen) >= s.max {
			return fmt.Errorf("%w: too many recent sign-ins to remember (%d); retry shortly", ErrUnavailable, s.max)
		}
	}
	s.seen[k] = until
	return nil
}

func (s *nonceSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}
