package client

import (
	"sync"

	"petrel/internal/keys"
	"petrel/internal/seal"
)

// keyCache holds the precomputed NaCl box key for each peer, bounded to
// about max entries: two generations, the older dropped when the newer
// fills, so hot peers survive and memory stays bounded without per-hit
// bookkeeping.
type keyCache struct {
	priv keys.Private
	max  int

	mu       sync.RWMutex
	cur, old map[keys.Public]*seal.Precomputed
}

func newKeyCache(priv keys.Private, max int) *keyCache {
	if max < 2 {
		max = 2
	}
	return &keyCache{priv: priv, max: max, cur: make(map[keys.Public]*seal.Precomputed)}
}

func (c *keyCache) get(peer keys.Public) *seal.Precomputed {
	c.mu.RLock()
	p, ok := c.cur[peer]
	c.mu.RUnlock()
	if ok {
		return p
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.cur[peer]; ok {
		return p
	}
	p, ok = c.old[peer]
	if !ok {
		p = seal.Precompute(peer, c.priv) // under the lock: one X25519 per new peer
	}
	if len(c.cur) >= c.max/2 {
		c.old, c.cur = c.cur, make(map[keys.Public]*seal.Precomputed, c.max/2)
	}
	c.cur[peer] = p
	return p
}

func (c *keyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.old)
}
