package management

import (
	"log/slog"
	"strings"
	"testing"

	"petrel/management/internal/mgmttest"
)

func logLine(rec slog.Record) string {
	var b strings.Builder
	b.WriteString(rec.Level.String() + " " + rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	return b.String()
}

// A wrong setup key is logged once at INFO with the caller's address (an
// operator sees who is guessing without turning on debug logs), and the
// presented key never reaches the log.
func TestWrongSetupKeyLoggedWithSourceNotKey(t *testing.T) {
	rec := &mgmttest.LogRecorder{}
	s, _ := startService(t, sqliteBackend(t).Open(t), func(c *Config) { c.Logger = slog.New(rec) })
	ctx := mgmttest.Ctx(t)
	rec.Take()
	const guess = "psk_Zq8sX3secretGuess4Kv"
	for _, c := range []struct{ ip, want string }{
		{"198.51.100.7", "198.51.100.7"},
		{"2001:db8::7", "2001:db8::7"},
	} {
		peer := mgmttest.NewKey(t).Public()
		_, err := s.Login(from(ctx, c.ip), peer, loginReq(guess, "guesser"))
		wantKind(t, err, KindUnauthenticated, "wrong setup key")
		var found []slog.Record
		var all []string
		for _, r := range rec.Take() {
			line := logLine(r)
			all = append(all, line)
			if strings.Contains(line, guess) || strings.Contains(line, strings.TrimPrefix(guess, "psk_")) {
				t.Fatalf("the presented setup key is in the log: %s", line)
			}
			if r.Level == slog.LevelInfo && r.Message == "registration refused" {
				found = append(found, r)
			}
		}
		if len(found) != 1 {
			t.Fatalf("from %s: %d INFO records of the refusal, want 1; log:\n%s", c.ip, len(found), strings.Join(all, "\n"))
		}
		var src, who string
		found[0].Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "source":
				src = a.Value.String()
			case "peer":
				who = a.Value.String()
			}
			return true
		})
		if src != c.want {
			t.Fatalf("refusal logged with source %q, want %s: %s", src, c.want, logLine(found[0]))
		}
		if who != peer.Short() {
			t.Fatalf("refusal logged with peer %q, want %s", who, peer.Short())
		}
	}
}
