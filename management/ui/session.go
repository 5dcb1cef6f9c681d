package ui

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"petrel/management"
)

// Session cookies. Over TLS the cookie carries the __Host- prefix, which
// makes the browser insist on Secure, Path=/ and no Domain, so no other
// host or path can plant or read it. Over plain http a Secure cookie would
// be dropped by browsers (except on localhost), so the plain cookie goes
// without Secure and without the prefix (which requires Secure).
const (
	cookieTLS   = "__Host-petrel_session"
	cookiePlain = "petrel_session"
)

// Session lifetimes: a session unused for idleTimeout, or older than
// absoluteTimeout, is over.
const (
	idleTimeout     = 12 * time.Hour
	absoluteTimeout = 7 * 24 * time.Hour
	// maxSessions bounds memory; past it the least recently used session
	// is dropped.
	maxSessions = 10000
)

// session is one signed-in browser. It keeps the principal the token
// authenticated as and the token's SHA-256 (what the account stores), never
// the token; a session opened with the identity provider keeps only the
// principal (nothing of the provider's tokens).
type session struct {
	principal management.Principal
	tokenHash [sha256.Size]byte
	created   time.Time
	lastUsed  time.Time
	flash     []flash // shown once, on the next page
}

// flash is a one-time message on the next page.
type flash struct {
	Error bool
	Msg   string
}

// sessions is the session store, keyed by the SHA-256 of the session ID,
// so it holds no usable cookie: in memory (sessions die with the process),
// or, with Options.Shared (several servers on one database), in the
// database so that every instance serves every session
// (session_shared.go).
type sessions struct {
	now    func() time.Time
	shared *sharedSessions // nil: memory

	mu sync.Mutex
	m  map[[sha256.Size]byte]*session
}

func newSessions(now func() time.Time, shared SharedState, log *slog.Logger) *sessions {
	s := &sessions{now: now, m: map[[sha256.Size]byte]*session{}}
	if shared != nil {
		s.shared = &sharedSessions{st: shared, now: now, log: log}
	}
	return s
}

// create opens a session for p and returns its ID (256 random bits,
// base64url). token is the credential p authenticated with (its SHA-256
// is kept for Recheck); "" for a sign-in with the identity provider
// (management.ViaOIDCSession), which Recheck checks by its user.
func (s *sessions) create(p management.Principal, token string) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now()
	sess := &session{principal: p, tokenHash: sha256.Sum256([]byte(token)), created: now, lastUsed: now}
	if s.shared != nil {
		return id, s.shared.create(id, sess)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if len(s.m) >= maxSessions {
		var oldest [sha256.Size]byte
		var at time.Time
		for k, v := range s.m {
			if at.IsZero() || v.lastUsed.Before(at) {
				oldest, at = k, v.lastUsed
			}
		}
		delete(s.m, oldest)
	}
	s.m[sha256.Sum256([]byte(id))] = sess
	return id, nil
}

// sweepLocked drops expired sessions.
func (s *sessions) sweepLocked(now time.Time) {
	for k, v := range s.m {
		if expired(v, now) {
			delete(s.m, k)
		}
	}
}

func expired(v *session, now time.Time) bool {
	return now.Sub(v.lastUsed) >= idleTimeout || now.Sub(v.created) >= absoluteTimeout
}

// get returns a copy of the live session with this ID and marks it used;
// an expired one is removed.
func (s *sessions) get(id string) (session, bool) { return s.lookup(id, true) }

// peek is get without marking the session used: an open event stream
// checks its session but does not keep it from idling out.
func (s *sessions) peek(id string) (session, bool) { return s.lookup(id, false) }

func (s *sessions) lookup(id string, touch bool) (session, bool) {
	if id == "" {
		return session{}, false
	}
	if s.shared != nil {
		return s.shared.lookup(id, touch)
	}
	k := sha256.Sum256([]byte(id))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[k]
	if v == nil {
		return session{}, false
	}
	if expired(v, now) {
		delete(s.m, k)
		return session{}, false
	}
	if touch {
		v.lastUsed = now
	}
	cp := *v
	cp.flash = nil
	return cp, true
}

func (s *sessions) remove(id string) {
	if s.shared != nil {
		s.shared.remove(id)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sha256.Sum256([]byte(id)))
}

// addFlash queues a message for the session's next page.
func (s *sessions) addFlash(id string, f flash) {
	if s.shared != nil {
		s.shared.addFlash(id, f)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.m[sha256.Sum256([]byte(id))]; v != nil && len(v.flash) < 10 {
		v.flash = append(v.flash, f)
	}
}

// takeFlash returns and clears the session's queued messages.
func (s *sessions) takeFlash(id string) []flash {
	if s.shared != nil {
		return s.shared.takeFlash(id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[sha256.Sum256([]byte(id))]
	if v == nil {
		return nil
	}
	f := v.flash
	v.flash = nil
	return f
}

// sessionCookie builds the cookie for id; an empty id with maxAge < 0
// deletes it.
func sessionCookie(secure bool, id string, maxAge int) *http.Cookie {
	c := &http.Cookie{Name: cookiePlain, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: maxAge}
	if secure {
		c.Name, c.Secure = cookieTLS, true
	}
	return c
}
