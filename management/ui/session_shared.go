package ui

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"petrel/management"
	"petrel/management/store"
)

// SharedState is where several petrel-servers on one database keep the
// dashboard's sessions and sign-ins in progress (postgres.Store with
// --ha), so a browser is served by whichever instance it reaches. Keys are
// SHA-256 hashes of cookie values; data is opaque to the store; expires
// only bounds how long an entry is kept (expiry is judged here).
type SharedState interface {
	PutUIState(ctx context.Context, kind string, key, data []byte, expires time.Time) error
	// UpdateUIState replaces an entry only if it still exists (false:
	// removed meanwhile, and it stays removed).
	UpdateUIState(ctx context.Context, kind string, key, data []byte, expires time.Time) (bool, error)
	// GetUIState and TakeUIState (which also removes the entry, for
	// exactly one caller) return store.ErrNotFound for a missing entry.
	GetUIState(ctx context.Context, kind string, key []byte) ([]byte, error)
	TakeUIState(ctx context.Context, kind string, key []byte) ([]byte, error)
	DeleteUIState(ctx context.Context, kind string, key []byte) error
	SweepUIState(ctx context.Context, before time.Time) error
}

// Entry kinds in SharedState.
const (
	kindSession = "session"
	kindSignIn  = "signin"
)

// sharedTimeout bounds one call to the shared state; a database that does
// not answer signs the request out rather than hanging it.
const sharedTimeout = 5 * time.Second

// touchEvery is how stale a shared session's last use may be written: a
// page view writes at most once a minute per session (idle timeout: hours).
const touchEvery = time.Minute

// storedSession is a session as the shared state holds it.
type storedSession struct {
	Principal management.Principal `json:"principal"`
	TokenHash []byte               `json:"token_hash"`
	Created   time.Time            `json:"created"`
	LastUsed  time.Time            `json:"last_used"`
	Flash     []flash              `json:"flash,omitempty"`
}

// sharedSessions implements sessions on SharedState.
type sharedSessions struct {
	st  SharedState
	now func() time.Time
	log *slog.Logger
}

func ctxShared() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), sharedTimeout)
}

func sessionKey(id string) []byte { k := sha256.Sum256([]byte(id)); return k[:] }

func (s *sharedSessions) put(ctx context.Context, key []byte, v storedSession) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.st.PutUIState(ctx, kindSession, key, data, v.Created.Add(absoluteTimeout))
}

// update writes back a session read earlier, unless it was removed
// meanwhile (signed out, on any instance): a sign-out is never undone by a
// request that read the session before it.
func (s *sharedSessions) update(ctx context.Context, key []byte, v storedSession) (bool, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	return s.st.UpdateUIState(ctx, kindSession, key, data, v.Created.Add(absoluteTimeout))
}

func (s *sharedSessions) create(id string, sess *session) error {
	ctx, cancel := ctxShared()
	defer cancel()
	if err := s.st.SweepUIState(ctx, s.now()); err != nil {
		s.log.Warn("sweep expired dashboard sessions", "err", err)
	}
	return s.put(ctx, sessionKey(id), storedSession{Principal: sess.principal, TokenHash: sess.tokenHash[:],
		Created: sess.created, LastUsed: sess.lastUsed})
}

// read returns the stored session, or false when there is none or it
// cannot be read (the browser signs in again; the error is logged).
func (s *sharedSessions) read(ctx context.Context, key []byte) (storedSession, bool) {
	data, err := s.st.GetUIState(ctx, kindSession, key)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("read a dashboard session", "err", err)
		}
		return storedSession{}, false
	}
	var v storedSession
	if err := json.Unmarshal(data, &v); err != nil || len(v.TokenHash) != sha256.Size {
		s.log.Warn("unreadable dashboard session; signing it out", "err", err)
		_ = s.st.DeleteUIState(ctx, kindSession, key)
		return storedSession{}, false
	}
	return v, true
}

func (s *sharedSessions) lookup(id string, touch bool) (session, bool) {
	ctx, cancel := ctxShared()
	defer cancel()
	key := sessionKey(id)
	v, ok := s.read(ctx, key)
	if !ok {
		return session{}, false
	}
	now := s.now()
	out := session{principal: v.Principal, created: v.Created, lastUsed: v.LastUsed}
	copy(out.tokenHash[:], v.TokenHash)
	if expired(&out, now) {
		_ = s.st.DeleteUIState(ctx, kindSession, key)
		return session{}, false
	}
	if touch && now.Sub(v.LastUsed) >= touchEvery {
		v.LastUsed, out.lastUsed = now, now
		switch ok, err := s.update(ctx, key, v); {
		case err != nil:
			s.log.Warn("record a dashboard session's use", "err", err)
		case !ok:
			return session{}, false // signed out meanwhile
		}
	}
	return out, true
}

func (s *sharedSessions) remove(id string) {
	ctx, cancel := ctxShared()
	defer cancel()
	if err := s.st.DeleteUIState(ctx, kindSession, sessionKey(id)); err != nil {
		s.log.Warn("end a dashboard session", "err", err)
	}
}

// addFlash and takeFlash read and write the whole session: two requests
// of one browser racing may lose a message, never the session.
func (s *sharedSessions) addFlash(id string, f flash) {
	ctx, cancel := ctxShared()
	defer cancel()
	key := sessionKey(id)
	v, ok := s.read(ctx, key)
	if !ok || len(v.Flash) >= 10 {
		return
	}
	v.Flash = append(v.Flash, f)
	if _, err := s.update(ctx, key, v); err != nil {
		s.log.Warn("queue a dashboard message", "err", err)
	}
}

func (s *sharedSessions) takeFlash(id string) []flash {
	ctx, cancel := ctxShared()
	defer cancel()
	key := sessionKey(id)
	v, ok := s.read(ctx, key)
	if !ok || len(v.Flash) == 0 {
		return nil
	}
	f := v.Flash
	v.Flash = nil
	if _, err := s.update(ctx, key, v); err != nil {
		s.log.Warn("clear dashboard messages", "err", err)
	}
	return f
}
