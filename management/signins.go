package management

import (
	"crypto/sha256"
	"strings"
	"sync"
	"time"

	"petrel/internal/keys"
)

// maxSignIns bounds the remembered sign-in tokens.
const maxSignIns = 1 << 16

// signIns remembers the sign-in tokens Login accepted. Device-flow ID
// tokens carry no nonce, so each is bound to the first machine (peer key)
// that presents it, until it expires: a retry from that machine (its reply
// was lost) is accepted, any other machine presenting it is a replay. A
// token is keyed by its signed part (header and payload), so re-encoding
// its signature does not make it new.
type signIns struct {
	mu   sync.Mutex
	seen map[[32]byte]boundToken
}

type boundToken struct {
	peer keys.Public
	exp  time.Time
}

// claim binds raw to peer until exp, or refuses it when it is bound to
// another peer.
func (s *signIns) claim(raw string, peer keys.Public, exp, now time.Time) error {
	signed := raw
	if i := strings.LastIndexByte(raw, '.'); i >= 0 {
		signed = raw[:i]
	}
	k := sha256.Sum256([]byte(signed))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[[32]byte]boundToken{}
	}
	if b, ok := s.seen[k]; ok && now.Before(b.exp) {
		if b.peer == peer {
			return nil
		}
		return Errorf(KindUnauthenticated, "sign-in token refused: it was used by another machine; sign in again")
	}
	if len(s.seen) >= maxSignIns {
		for h, b := range s.seen {
			if !now.Before(b.exp) {
				delete(s.seen, h)
			}
		}
		if len(s.seen) >= maxSignIns {
			return Errorf(KindUnavailable, "too many recent sign-ins to remember; retry in a minute")
		}
	}
	s.seen[k] = boundToken{peer: peer, exp: exp}
	return nil
}
