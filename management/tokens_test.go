package management

import (
	"context"
	"strings"
	"testing"

	"petrel/management/internal/mgmttest"
	"petrel/management/store/storeopen"
)

func TestCreateAdminToken(t *testing.T) {
	dir := t.TempDir()
	ctx := mgmttest.Ctx(t)
	st, err := storeopen.Open(ctx, "sqlite", dir, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Store: st, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	boot, _, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acct := svc.Accounts()[0]

	for _, tc := range []struct {
		name, acct, tokenName, wantErr string
		kind                           ErrorKind
	}{
		{"empty name", acct, " ", "must not be empty", KindInvalid},
		{"long name", acct, strings.Repeat("x", maxName+1), "longer than", KindInvalid},
		{"unknown account", "nope", "ops", "", KindNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.CreateAdminToken(ctx, tc.acct, tc.tokenName)
			if err == nil || KindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v (kind %v), want kind %v containing %q", err, KindOf(err), tc.kind, tc.wantErr)
			}
		})
	}

	tok, err := svc.CreateAdminToken(ctx, acct, "recovered")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, adminTokenPrefix) || tok == boot {
		t.Fatalf("token %q", tok)
	}
	for _, tk := range []string{tok, boot} {
		if got, ok := svc.AuthenticateToken(tk); !ok || got != acct {
			t.Fatalf("token %.9s… does not authenticate: %q %v", tk, got, ok)
		}
	}
	snap, err := svc.Snapshot(acct)
	if err != nil {
		t.Fatal(err)
	}
	var named int
	for _, at := range snap.AdminTokens {
		if at.Name == "recovered" {
			named++
			if string(at.TokenHash) == tok {
				t.Fatal("plain token stored")
			}
		}
	}
	if named != 1 {
		t.Fatalf("%d tokens named recovered", named)
	}
	svc.Stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// The token is durable: a fresh service on the same store accepts it.
	st2, err := storeopen.Open(ctx, "sqlite", dir, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	svc2, err := New(Config{Store: st2, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer svc2.Stop()
	if got, ok := svc2.AuthenticateToken(tok); !ok || got != acct {
		t.Fatalf("token not durable: %q %v", got, ok)
	}
	if _, err := svc2.CreateAdminToken(context.Background(), acct, "x"); err != nil {
		t.Fatal(err)
	}
}

// Well-formed wrong tokens are refused: right prefix and length, and one
// that differs from a real token only in its last character (a check that
// compared lengths, prefixes or a truncated hash would let them in).
func TestWrongAdminTokensRefused(t *testing.T) {
	s, boot := startService(t, sqliteBackend(t).Open(t))
	if _, ok := s.AuthenticateToken(boot); !ok {
		t.Fatal("the real token does not authenticate")
	}
	// other returns a character that differs from c, so the altered token
	// can never equal the real one.
	other := func(c byte) string {
		if c == 'a' {
			return "b"
		}
		return "a"
	}
	first := len(adminTokenPrefix)
	for _, tc := range []struct{ name, tok string }{
		{"same shape", adminTokenPrefix + strings.Repeat("x", len(boot)-len(adminTokenPrefix))},
		{"last character differs", boot[:len(boot)-1] + other(boot[len(boot)-1])},
		{"first character of the secret differs", boot[:first] + other(boot[first]) + boot[first+1:]},
		{"prefix only", adminTokenPrefix},
		{"truncated", boot[:len(boot)-1]},
		{"extended", boot + "a"},
		{"empty", ""},
	} {
		if acct, ok := s.AuthenticateToken(tc.tok); ok {
			t.Errorf("%s: token %q authenticated for %q", tc.name, tc.tok, acct)
		}
	}
}
