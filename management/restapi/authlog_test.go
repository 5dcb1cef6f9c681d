package restapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"petrel/management/internal/mgmttest"
)

// text renders a record with all its attributes.
func recordText(rec slog.Record) string {
	var b strings.Builder
	b.WriteString(rec.Level.String() + " " + rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	return b.String()
}

// A wrong admin token is logged once at INFO with the caller's address,
// and the token itself never reaches the log.
func TestFailedAuthLoggedWithSourceNotToken(t *testing.T) {
	e := newEnv(t)
	rec := &mgmttest.LogRecorder{}
	h := newContract(t, New(e.svc, slog.New(rec)))
	const secret = "ptok_Zq8sX3secretGuess4Kv"
	// A plain rejected token, and one shaped like a personal access token.
	for _, auth := range []string{"Bearer " + secret, "Bearer pat_" + secret} {
		rec.Take() // only this request's records
		req := httptest.NewRequest("GET", "/api/groups", nil)
		req.RemoteAddr = "198.51.100.7:40000"
		req.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("Authorization %q: status %d, want 401", auth, w.Code)
		}
		var found []slog.Record
		for _, r := range rec.Take() {
			if txt := recordText(r); strings.Contains(txt, secret) {
				t.Fatalf("the presented token is in the log: %s", txt)
			}
			if r.Level == slog.LevelInfo && strings.Contains(r.Message, "authentication failed") {
				found = append(found, r)
			}
		}
		if len(found) != 1 {
			var all []string
			for _, r := range rec.Take() {
				all = append(all, recordText(r))
			}
			t.Fatalf("Authorization %q: %d INFO records of the failure, want 1; log:\n%s", auth, len(found), strings.Join(all, "\n"))
		}
		var src string
		found[0].Attrs(func(a slog.Attr) bool {
			if a.Key == "source" {
				src = a.Value.String()
			}
			return true
		})
		if src != "198.51.100.7" {
			t.Fatalf("failure logged with source %q, want 198.51.100.7: %s", src, recordText(found[0]))
		}
	}
}
