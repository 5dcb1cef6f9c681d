package engine

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"petrel/client/mapcache"
	"petrel/client/wg"
	"petrel/internal/keys"
	"petrel/proto/managementpb"
)

// The agent keeps its last network map on disk (client/mapcache) so that,
// restarted while management, signal and relay are all unreachable, it
// brings its tunnels up from what it knew: the login answer, the map, and
// each peer's last working direct endpoint, on the same WireGuard port as
// before (the peers' caches point at it). It then retries management for
// as long as it takes and resyncs.

// CacheFile is the cache's name inside Config.StateDir.
const CacheFile = "map.cache"

// cacheWriteInterval bounds how often the cache is rewritten.
const cacheWriteInterval = 5 * time.Second

// endpointTick is how often the working direct endpoints are collected
// (one device stats read; the route planner reads them every second too).
const endpointTick = 2 * time.Second

// cacheLoginWait is how long Start tries management before it falls back
// to the cache.
var cacheLoginWait = 5 * time.Second

type cacheState struct {
	w *mapcache.Writer // nil: no state dir

	freshAt   atomic.Int64 // unix ns: the map was last known current
	fromCache atomic.Bool  // running on the cached map; no login yet
	streamMap atomic.Bool  // the current Sync stream delivered a map

	mu        sync.Mutex
	endpoints map[string]mapcache.Endpoint
	dropped   bool // management forgot this peer; the cache was removed
}

func (e *Engine) cachePath() string {
	if e.cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(e.cfg.StateDir, CacheFile)
}

// loadCache reads the cache; a bad file is logged and ignored (the agent
// then needs management as if it had none, and keeps its key).
func (e *Engine) loadCache() *mapcache.Snapshot {
	path := e.cachePath()
	if path == "" || e.cfg.SetupKey != "" || e.cfg.IDToken != "" {
		return nil // a registration or sign-in starts from nothing
	}
	s, err := mapcache.Load(path, e.cfg.Key, e.cfg.ManagementURL)
	switch {
	case errors.Is(err, mapcache.ErrNoCache):
		return nil
	case err != nil:
		e.log.Warn("ignoring the map cache", "err", err)
		return nil
	}
	e.cache.endpoints = s.Endpoints
	return s
}

// loginOrCache logs in; with a cache, it falls back to it when management
// stays unreachable for cacheLoginWait (a refusal still fails).
func (e *Engine) loginOrCache(ctx context.Context, cached *mapcache.Snapshot) (*managementpb.LoginResponse, error) {
	if cached == nil {
		return e.login(ctx)
	}
	lctx, cancel := context.WithTimeout(ctx, cacheLoginWait)
	defer cancel()
	resp, err := e.login(lctx)
	if err == nil || errors.Is(err, ErrLoginRefused) || ctx.Err() != nil {
		return resp, err
	}
	e.log.Warn("management unreachable; starting from the cached network map",
		"err", err, "map_age", time.Since(cached.FreshAt).Round(time.Second))
	e.cache.fromCache.Store(true)
	e.cache.freshAt.Store(cached.FreshAt.UnixNano())
	return &managementpb.LoginResponse{PeerConfig: cached.PeerConfig, ServerConfig: cached.ServerConfig}, nil
}

// startCacheWriter starts saving the map (after the device is up: the
// snapshot records its port).
func (e *Engine) startCacheWriter() {
	if path := e.cachePath(); path != "" {
		e.cache.w = mapcache.NewWriter(path, e.cfg.Key, cacheWriteInterval, e.log)
	}
}

// useCachedMap applies the cached map and points WireGuard at each peer's
// last working endpoint.
func (e *Engine) useCachedMap(s *mapcache.Snapshot) {
	e.mu.Lock()
	e.nm = s.Map
	e.mu.Unlock()
	e.applyMap(s.Map)
	for k, r := range e.peerSnapshot() {
		ep, ok := s.Endpoints[k.String()]
		if !ok {
			continue
		}
		r.cached.Store(true)
		if err := (peerEndpoints{e, r}).SetEndpoint(k, ep.Addr); err != nil {
			e.log.Warn("use cached endpoint", "peer", k.Short(), "err", err)
			continue
		}
		e.log.Info("peer from cache", "peer", k.Short(), "endpoint", ep.Addr)
	}
}

func (e *Engine) peerSnapshot() map[keys.Public]*remote {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.peers)
}

// markFresh records that the map is current now.
func (e *Engine) markFresh() { e.cache.freshAt.Store(time.Now().UnixNano()) }

// mapAge is how old the map the agent runs on may be: zero while the Sync
// stream is up, else the time since it was last known current.
func (e *Engine) mapAge() time.Duration {
	if e.mgmtUp.Load() && e.cache.streamMap.Load() {
		return 0
	}
	ns := e.cache.freshAt.Load()
	if ns == 0 {
		return 0
	}
	return time.Since(time.Unix(0, ns))
}

// saveCache schedules a write of the current state.
func (e *Engine) saveCache() {
	if e.cache.w != nil {
		e.cache.w.Update(e.snapshot)
	}
}

// snapshot builds the cache content (on the writer's goroutine).
func (e *Engine) snapshot() *mapcache.Snapshot {
	e.cache.mu.Lock()
	if e.cache.dropped {
		e.cache.mu.Unlock()
		return nil
	}
	eps := maps.Clone(e.cache.endpoints)
	e.cache.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.nm == nil || e.self == nil {
		return nil
	}
	return &mapcache.Snapshot{
		ManagementURL: e.cfg.ManagementURL, SavedAt: time.Now(),
		FreshAt: time.Unix(0, e.cache.freshAt.Load()), WGPort: e.LocalPort(),
		PeerConfig: e.self, ServerConfig: e.serverCf, Map: e.nm, Endpoints: eps,
	}
}

// noteEndpoints records the direct endpoints that carry a fresh handshake
// and saves the cache when they changed. Endpoints of peers that left the
// map are dropped; others are kept while their peer is away.
func (e *Engine) noteEndpoints() {
	if e.cache.w == nil || e.dev == nil {
		return
	}
	stats, err := e.dev.Stats()
	if err != nil {
		return
	}
	inMap := e.peerSnapshot()
	e.cache.mu.Lock()
	next := make(map[string]mapcache.Endpoint, len(inMap))
	for k := range inMap {
		if old, ok := e.cache.endpoints[k.String()]; ok {
			next[k.String()] = old
		}
	}
	for k, s := range stats {
		if _, ok := inMap[k]; !ok || s.Endpoint == "" || strings.HasPrefix(s.Endpoint, wg.RelayPrefix) ||
			s.LastHandshake.IsZero() || time.Since(s.LastHandshake) > wgRejectAfterTime {
			continue
		}
		next[k.String()] = mapcache.Endpoint{Addr: s.Endpoint, Seen: s.LastHandshake.UTC().Truncate(time.Second)}
	}
	changed := !maps.EqualFunc(next, e.cache.endpoints, func(a, b mapcache.Endpoint) bool { return a.Addr == b.Addr })
	e.cache.endpoints = next
	e.cache.mu.Unlock()
	if changed {
		e.saveCache()
	}
}

// dropCache removes the cache: management no longer knows this peer, and
// a restart must not bring its tunnels back.
func (e *Engine) dropCache() {
	e.cache.mu.Lock()
	e.cache.dropped = true
	e.cache.mu.Unlock()
	if e.cache.w != nil {
		e.cache.w.Close() // no write in flight can bring the file back
	}
	if path := e.cachePath(); path != "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			e.log.Warn("remove map cache", "err", err)
		}
	}
}

// stopCache writes the last state and stops the writer.
func (e *Engine) stopCache() {
	if e.cache.w != nil {
		e.noteEndpoints()
		e.saveCache()
		e.cache.w.Close()
	}
}
