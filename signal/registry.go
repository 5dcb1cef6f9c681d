package signal

import (
	"sync"

	"petrel/internal/keys"
)

const registryShards = 32

// registry maps a peer key to its current session. Sharded so routers on
// different cores rarely meet on one lock.
type registry struct {
	shards [registryShards]struct {
		mu sync.RWMutex
		m  map[keys.Public]*session
	}
	mu sync.Mutex // serialises put for the MaxSessions check
	n  int
}

func newRegistry() *registry {
	r := &registry{}
	for i := range r.shards {
		r.shards[i].m = make(map[keys.Public]*session)
	}
	return r
}

func (r *registry) shard(k keys.Public) int { return int(k[0]^k[31]) % registryShards }

func (r *registry) get(k keys.Public) *session {
	sh := &r.shards[r.shard(k)]
	sh.mu.RLock()
	s := sh.m[k]
	sh.mu.RUnlock()
	return s
}

// put makes s the session of its key and returns the one it replaced. It
// refuses (ok false) a new key when max > 0 sessions are registered.
func (r *registry) put(s *session, max int) (old *session, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sh := &r.shards[r.shard(s.key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old = sh.m[s.key]
	if old == nil {
		if max > 0 && r.n >= max {
			return nil, false
		}
		r.n++
	}
	sh.m[s.key] = s
	return old, true
}

// remove drops s if it is still the session of its key.
func (r *registry) remove(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sh := &r.shards[r.shard(s.key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[s.key] == s {
		delete(sh.m, s.key)
		r.n--
	}
}

func (r *registry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}
