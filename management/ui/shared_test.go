package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"petrel/management/store/postgres"
	"petrel/management/store/storetest"
)

// roundRobin hands requests to its handlers in turn, as a load balancer in
// front of several petrel-servers would.
type roundRobin struct {
	hs []http.Handler
	n  atomic.Uint64
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rr.hs[(rr.n.Add(1)-1)%uint64(len(rr.hs))].ServeHTTP(w, r)
}

// sharedState opens the shared store several --ha servers would use
// (PETREL_TEST_POSTGRES_DSN; skipped without it, like every PostgreSQL
// test; required in CI).
func sharedState(t *testing.T) *postgres.Store {
	t.Helper()
	dsn := storetest.PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.OpenShared(ctx, dsn, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestOIDCSignInAcrossInstances: two dashboards on one database behind a
// round-robin balancer: the sign-in starts on one and its callback lands
// on the other, the session then works on both, and signing out ends it
// on both. (Without the shared state the callback finds no sign-in.)
func TestOIDCSignInAcrossInstances(t *testing.T) {
	e := newOIDCEnv(t, oidcOpts{shared: sharedState(t)})
	b := e.browser()
	b.signIn("u-alice")
	for range 4 { // both instances, twice
		b.signedInAs("alice@example.com")
	}
	if r := b.do(http.MethodPost, "/ui/logout", url.Values{}); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	b.signedOut()
	b.signedOut()
}

// TestSharedSessionIdleAndAbsolute: a shared session idles out after the
// idle timeout unless used (its use is written to the database, at most
// once a minute), and ends after the absolute timeout however used.
func TestSharedSessionIdleAndAbsolute(t *testing.T) {
	e := newOIDCEnv(t, oidcOpts{shared: sharedState(t)})
	b := e.browser()
	b.signIn("u-alice")
	for { // used every 11 h: alive until the 7-day limit
		e.clock.advance(11 * time.Hour)
		if e.clock.offset.Load() >= int64(7*24*time.Hour) {
			break
		}
		b.signedInAs("alice@example.com")
	}
	b.signedOut()

	b = e.browser()
	b.signIn("u-alice")
	e.clock.advance(12*time.Hour + time.Second) // idle past the idle timeout
	b.signedOut()
}
