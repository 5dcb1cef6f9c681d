package management

// Catching up from the change log (HA, docs/adr-005-ha-control-plane.md).
//
// Every commit of an --ha instance stores, in its transaction, the writes
// that advanced the account to its new version (store.Feed.Changes). An
// instance behind applies those rows to its copy in version order — the
// cost of the change, not of the account — and reloads the whole account
// only when the log does not continue its copy's version without a gap
// (pruned after store.ChangeLogKeep, or a row it cannot decode).

import (
	"context"
	"errors"
	"fmt"

	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/management/store"
)

// changeLogBatch bounds the rows one catch-up reads; an instance further
// behind reloads the account instead.
const changeLogBatch = 1000

// catchUpLocked brings st up to at least version target (0: whatever is
// stored) from the change log, or by reloading the account when the log
// cannot; it reports whether st's view changed. st.mu is held.
func (s *Service) catchUpLocked(ctx context.Context, st *account, target int64) (bool, error) {
	if s.follow == nil {
		return s.reloadLocked(ctx, st)
	}
	old := st.view()
	chs, err := s.follow.cfg.Feed.Changes(ctx, st.id, old.acct.Version, changeLogBatch)
	switch {
	case err != nil:
		s.log.Debug("read the change log; reloading the account", "account", st.id, "err", err)
	case len(chs) == 0 && target != 0 && old.acct.Version >= target:
		return false, nil
	case continues(chs, old.acct.Version) && chs[len(chs)-1].Version >= target:
		err := s.applyLocked(st, old, chs)
		if err == nil {
			return true, nil
		}
		s.follow.gaps.Add(1)
		s.log.Warn("a change-log row cannot be applied; reloading the account", "account", st.id, "err", err)
	default:
		s.follow.gaps.Add(1)
		s.log.Debug("the change log does not continue this copy; reloading the account",
			"account", st.id, "have", old.acct.Version, "want", target, "rows", len(chs))
	}
	return s.reloadLocked(ctx, st)
}

// continues reports whether chs are the versions base+1, base+2, … .
func continues(chs []store.AccountChange, base int64) bool {
	if len(chs) == 0 {
		return false
	}
	for i, c := range chs {
		if c.Version != base+1+int64(i) {
			return false
		}
	}
	return true
}

// applyLocked applies change-log rows (continuing old's version) to a
// copy of old's account and publishes it as reloadLocked does: the new
// snapshot is derived from the old one (only the changed objects are
// indexed again), the byKey index moves along, streams of deleted or
// disabled peers close, and connected peers get their deltas.
func (s *Service) applyLocked(st *account, old *view, chs []store.AccountChange) error {
	next := cloneAccount(old.acct)
	for _, c := range chs {
		for i, op := range c.Ops {
			if err := applyOp(next, op); err != nil {
				return fmt.Errorf("version %d write %d: %w", c.Version, i, err)
			}
		}
	}
	next.Version = chs[len(chs)-1].Version
	snap := old.snap.Next(next, netmap.Change{}) // Next finds the changed objects by pointer
	s.follow.applied.Add(uint64(len(chs)))       // before the view: whoever sees it sees the count
	st.cur.Store(&view{acct: next, snap: snap})
	s.afterCatchUp(old, next, snap)
	s.log.Debug("applied the change log", "account", st.id, "from", old.acct.Version, "to", next.Version)
	return nil
}

// afterCatchUp is what follows a new view taken from the store (log or
// reload): index, streams of removed peers, deltas.
func (s *Service) afterCatchUp(old *view, next *model.Account, snap *netmap.Snapshot) {
	s.reindexPeers(old.acct, next)
	for id, p := range old.acct.Peers {
		switch np := next.Peers[id]; {
		case np == nil:
			s.hub.forget(id, Errorf(KindPermission, "peer was deleted"))
		case np.Disabled && !p.Disabled:
			s.hub.forget(id, Errorf(KindPermission, "peer is disabled; sign in again"))
		}
	}
	s.hub.deliver(next.ID, netmap.Deltas(old.snap, snap, netmap.Change{}), s.cfg.MaxCoalesced)
}

// applyOp applies one logged write to a (a fresh clone: its maps are its
// own; the objects put are freshly decoded, so repairing them is safe). A
// write it does not know is an error (the account is reloaded instead).
func applyOp(a *model.Account, op store.ChangeOp) error {
	switch {
	case op.Settings != nil:
		a.Settings = *op.Settings
	case op.Delete != nil:
		return deleteObject(a, op.Delete.Kind, op.Delete.ID)
	case op.Put != nil:
		if p, ok := op.Put.(*model.Peer); ok {
			repairPeer(p)
		}
		if !a.PutObject(op.Put) {
			return fmt.Errorf("put of an unknown object %T", op.Put)
		}
	default:
		return errors.New("empty write")
	}
	return nil
}

func deleteObject(a *model.Account, k model.Kind, id string) error {
	if !a.DeleteObject(k, id) {
		return fmt.Errorf("delete of an unknown kind %q", k)
	}
	return nil
}

// FollowApplied reports how many change-log rows this service applied,
// and FollowGaps how often the log did not continue its copy so the
// account was reloaded instead (HA; 0 without).
func (s *Service) FollowApplied() uint64 {
	if s.follow == nil {
		return 0
	}
	return s.follow.applied.Load()
}

// FollowGaps: see FollowApplied.
func (s *Service) FollowGaps() uint64 {
	if s.follow == nil {
		return 0
	}
	return s.follow.gaps.Load()
}
