package management

// Following other instances (HA, docs/adr-005-ha-control-plane.md).
//
// With Config.HA set, several Services share one PostgreSQL database. Each
// keeps its accounts in memory as usual; the follower keeps them in step
// with the commits of the others:
//
//   - the store's Feed calls heard for every NOTIFY ("account X is at
//     version N"), and resync after each (re)LISTEN;
//   - a sweep (every HAConfig.SweepInterval, and on resync) reads every
//     account's stored version in one query and marks the accounts whose
//     stored version is newer than memory, or that memory lacks;
//   - one goroutine (followLoop) brings each marked account up to date
//     under the account mutex: it applies the change-log rows after its
//     copy's version (changelog.go), or reloads the whole account when the
//     log does not continue its copy; then it swaps the view, moves the
//     byKey index along, closes the streams of peers that were deleted or
//     disabled and hands every connected peer the delta from its old map
//     to its new one (so Sync streams continue with consecutive serials).
//
// A mutation whose account lock shows a newer stored version, or that
// meets store.ErrStale, catches up the same way first (mutate.go).
//
// Goroutines: Feed.Follow runs on one (heard and resync only mark and
// wake); followLoop on another; both are tracked by Service.wg and end
// with Stop. catchUp takes the account mutex, so it never interleaves with
// a mutation or a Sync registration of the same account.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"petrel/internal/keys"
	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/management/store"
)

// DefaultSweepInterval is how often a follower compares all stored account
// versions with memory, the safety net for lost notifications.
const DefaultSweepInterval = 5 * time.Second

// staleRetries bounds how often a mutation refused with store.ErrStale is
// run again on the reloaded account (HA only). Admin edits rarely collide;
// the bound matters only for writers hammering one account from several
// instances at once.
const staleRetries = 8

// HAConfig runs a Service as one of several on a shared store.
type HAConfig struct {
	// Feed reports the other instances' commits (postgres.OpenShared).
	Feed store.Feed
	// SweepInterval is how often every account's stored version is
	// compared with memory (default DefaultSweepInterval).
	SweepInterval time.Duration
}

// follower holds what the Feed's goroutine hands to followLoop.
type follower struct {
	cfg HAConfig

	mu    sync.Mutex
	dirty map[string]int64 // account ID → newest version heard of

	wake   chan struct{} // cap 1: dirty is not empty
	resync chan struct{} // cap 1: sweep now

	reloads atomic.Uint64 // accounts reloaded from the store
	applied atomic.Uint64 // change-log rows applied (changelog.go)
	gaps    atomic.Uint64 // catch-ups the log could not serve

	// Housekeeping (hajobs.go), janitor goroutine only but janitorRuns.
	instance    string    // this process in job claims
	touched     time.Time // last successful TouchSeen
	janitorRuns atomic.Uint64

	// Stream openings gathered for one last-seen write (hajobs.go).
	openMu sync.Mutex
	opened map[string]struct{} // nil: no write scheduled
}

func newFollower(cfg HAConfig) *follower {
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	return &follower{cfg: cfg, dirty: map[string]int64{}, wake: make(chan struct{}, 1), resync: make(chan struct{}, 1),
		instance: newInstanceID()}
}

// heard marks an account as possibly behind version v.
func (f *follower) heard(c store.Change) {
	f.mu.Lock()
	if v, ok := f.dirty[c.AccountID]; !ok || c.Version > v {
		f.dirty[c.AccountID] = c.Version
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *follower) askResync() {
	select {
	case f.resync <- struct{}{}:
	default:
	}
}

func (f *follower) take() map[string]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.dirty
	f.dirty = map[string]int64{}
	return d
}

// startFollowing starts the Feed listener and followLoop (Start calls it
// when Config.HA is set).
func (s *Service) startFollowing() {
	f := s.follow
	ctx, cancel := context.WithCancel(context.Background())
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		_ = f.cfg.Feed.Follow(ctx, f.heard, f.askResync) // returns ctx's error
	}()
	go func() {
		defer s.wg.Done()
		defer cancel()
		s.followLoop(ctx)
	}()
}

func (s *Service) followLoop(ctx context.Context) {
	f := s.follow
	t := time.NewTicker(f.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopCh:
			return
		case <-f.wake:
		case <-f.resync:
			s.sweep(ctx)
		case <-t.C:
			s.sweep(ctx)
		}
		for id, v := range f.take() {
			if err := s.catchUp(ctx, id, v); err != nil && ctx.Err() == nil {
				// The next sweep marks it again.
				s.log.Warn("catch up with another instance's change", "account", id, "err", err)
			}
		}
	}
}

// sweep marks every account whose stored version is newer than memory's
// (or that memory lacks).
func (s *Service) sweep(ctx context.Context) {
	vs, err := s.follow.cfg.Feed.Versions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("compare account versions", "err", err)
		}
		return
	}
	for id, v := range vs {
		if st, err := s.account(id); err == nil && st.view().acct.Version >= v {
			continue
		}
		s.follow.heard(store.Change{AccountID: id, Version: v})
	}
}

// catchUp brings account id up to at least the stored version it heard
// of (it may find a newer one) and adds an account another instance
// created.
func (s *Service) catchUp(ctx context.Context, id string, heard int64) error {
	st, err := s.account(id)
	if err != nil {
		return s.adopt(ctx, id)
	}
	if st.view().acct.Version >= heard { // our own commit, or already caught up
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	_, err = s.catchUpLocked(ctx, st, heard)
	return err
}

// adopt loads an account another instance created.
func (s *Service) adopt(ctx context.Context, id string) error {
	a, err := s.cfg.Store.LoadAccount(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accounts[id] == nil {
		s.addAccountLocked(a)
		s.follow.reloads.Add(1)
		s.log.Info("loaded account created by another instance", "account", id)
	}
	return nil
}

// reloadLocked replaces st's view with the stored account when the stored
// version is newer, and reports whether it did; st.mu is held.
func (s *Service) reloadLocked(ctx context.Context, st *account) (bool, error) {
	a, err := s.cfg.Store.LoadAccount(ctx, st.id)
	if err != nil {
		return false, err
	}
	old := st.view()
	if a.Version <= old.acct.Version {
		return false, nil
	}
	fillMaps(a)
	for _, p := range a.Peers {
		repairPeer(p)
	}
	snap := netmap.Build(a)
	if s.follow != nil { // before the view: whoever sees it sees the count
		s.follow.reloads.Add(1)
	}
	st.cur.Store(&view{acct: a, snap: snap})
	s.afterCatchUp(old, a, snap)
	s.log.Debug("caught up with the store", "account", a.ID, "from", old.acct.Version, "to", a.Version)
	return true, nil
}

// reindexPeers moves the byKey index from old's peers to next's.
func (s *Service) reindexPeers(old, next *model.Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, p := range old.Peers {
		if np := next.Peers[id]; np != nil && np.PublicKey == p.PublicKey {
			continue
		}
		if k, err := keys.ParsePublic(p.PublicKey); err == nil && s.byKey[k].peerID == id {
			delete(s.byKey, k)
		}
	}
	for id, p := range next.Peers {
		if op := old.Peers[id]; op != nil && op.PublicKey == p.PublicKey {
			continue
		}
		if k, err := keys.ParsePublic(p.PublicKey); err == nil {
			s.byKey[k] = peerRef{next.ID, id}
		}
	}
}

// syncCatchUp, in HA mode, brings the account up to the stored version
// before a Sync stream's full map is taken, so that an agent moving from
// another instance never gets a map older than one it was already sent.
// Failures are left to the follower.
func (s *Service) syncCatchUp(ctx context.Context, accountID string) {
	s.catchUpAccount(ctx, accountID)
}

// FollowReloads reports how many times this service reloaded an account
// changed by another instance (0 without HA).
func (s *Service) FollowReloads() uint64 {
	if s.follow == nil {
		return 0
	}
	return s.follow.reloads.Load()
}

// catchUpAll (HA) brings every account whose stored version is newer than
// memory, or that memory lacks, up to date now. Lookups that miss in
// memory call it before refusing: an agent may use a setup key, or sync
// right after registering, through an instance that has not heard of the
// commit yet. Without HA it does nothing.
func (s *Service) catchUpAll(ctx context.Context) {
	if s.follow == nil || s.Fenced() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	vs, err := s.follow.cfg.Feed.Versions(ctx)
	if err != nil {
		s.log.Debug("catch up on a miss", "err", err)
		return
	}
	for id, v := range vs {
		if st, err := s.account(id); err == nil && st.view().acct.Version >= v {
			continue
		}
		if err := s.catchUp(ctx, id, v); err != nil {
			s.log.Debug("catch up on a miss", "account", id, "err", err)
		}
	}
}

// catchUpTimeout bounds the catch-up a request does on a miss: a database
// that does not answer delays the request that long, then it is answered
// from memory (the fence takes over after DefaultFenceAfter).
const catchUpTimeout = 2 * time.Second

// catchUpAccount (HA) brings one account up to date if its stored version
// is newer than memory, and reports whether it was behind.
func (s *Service) catchUpAccount(ctx context.Context, id string) (behind bool) {
	if s.follow == nil || s.Fenced() {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	v, err := s.follow.cfg.Feed.AccountVersion(ctx, id)
	if err != nil {
		s.log.Debug("catch up with an account", "account", id, "err", err)
		return false
	}
	if st, err := s.account(id); err == nil && st.view().acct.Version >= v {
		return false
	}
	if err := s.catchUp(ctx, id, v); err != nil {
		s.log.Debug("catch up with an account", "account", id, "err", err)
	}
	return true
}

// CatchUp (HA) brings an account up to date with the other instances'
// commits before a caller reads it (the dashboard, per request). Without
// HA it does nothing.
func (s *Service) CatchUp(ctx context.Context, accountID string) { s.catchUpAccount(ctx, accountID) }

// catchUpAllStrict is catchUpAll for account creation: no time cap, and
// an error when the stored accounts cannot be read (a network must not be
// chosen from an incomplete view).
func (s *Service) catchUpAllStrict(ctx context.Context) error {
	vs, err := s.follow.cfg.Feed.Versions(ctx)
	if err != nil {
		return err
	}
	for id, v := range vs {
		if st, err := s.account(id); err == nil && st.view().acct.Version >= v {
			continue
		}
		if err := s.catchUp(ctx, id, v); err != nil {
			return err
		}
	}
	return nil
}

// lookupKeyFresh is lookupKey that, with HA, catches up with the store
// before it reports a miss.
func (s *Service) lookupKeyFresh(ctx context.Context, pk keys.Public) (peerRef, bool) {
	if ref, ok := s.lookupKey(pk); ok || s.follow == nil {
		return ref, ok
	}
	s.catchUpAll(ctx)
	return s.lookupKey(pk)
}
