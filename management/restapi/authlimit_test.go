package restapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// A source that keeps sending wrong admin tokens is answered 429 with
// Retry-After once its failures are used up, before its token is checked
// (so even the right token waits: guessing stops); another source is not
// affected.
func TestFailedAuthRateLimitedPerSource(t *testing.T) {
	e := newEnv(t)
	h := newContract(t, New(e.svc, nil))
	do := func(remote, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/api/groups", nil)
		req.RemoteAddr = remote
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	const attacker, admin = "198.51.100.7:40000", "192.0.2.10:50000"
	for i := range authFailBurst {
		if w := do(attacker, "ptok_wrong"); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, w.Code)
		}
	}
	w := do(attacker, "ptok_wrong")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("failure %d: status %d, want 429", authFailBurst+1, w.Code)
	}
	if s, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	var eb errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Code != codeRateLimited {
		t.Fatalf("body %s", w.Body)
	}
	if w := do(attacker, e.token); w.Code != http.StatusTooManyRequests {
		t.Fatalf("right token from the limited source: %d, want 429", w.Code)
	}
	if w := do(admin, e.token); w.Code != http.StatusOK {
		t.Fatalf("another source with the right token: %d, want 200", w.Code)
	}
	// Successful requests never count against a source.
	for range 2 * authFailBurst {
		if w := do(admin, e.token); w.Code != http.StatusOK {
			t.Fatalf("admin throttled after successes: %d", w.Code)
		}
	}
}
