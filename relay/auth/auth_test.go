package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"petrel/internal/keys"
)

func mustKey(t testing.TB) keys.Public {
	t.Helper()
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

func TestVerify(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, SecretLen)
	other := bytes.Repeat([]byte{8}, SecretLen)
	peer, stranger := mustKey(t), mustKey(t)
	now := time.Unix(1_800_000_000, 0)
	good := Mint(secret, peer, now.Add(time.Hour))

	flip := func(tok string, i int) string {
		raw, _ := base64.RawURLEncoding.DecodeString(tok)
		raw[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	tests := []struct {
		name   string
		secret []byte
		token  string
		peer   keys.Public
		now    time.Time
		want   error
	}{
		{"valid", secret, good, peer, now, nil},
		{"valid until last second", secret, good, peer, now.Add(time.Hour - time.Second), nil},
		{"expired at expiry", secret, good, peer, now.Add(time.Hour), ErrExpired},
		{"expired", secret, Mint(secret, peer, now.Add(-time.Second)), peer, now, ErrExpired},
		{"forged by other secret", secret, Mint(other, peer, now.Add(time.Hour)), peer, now, ErrForged},
		{"mac bit flipped", secret, flip(good, rawLen-1), peer, now, ErrForged},
		{"expiry extended", secret, flip(good, 1+keys.Len+6), peer, now, ErrForged},
		{"key swapped", secret, flip(good, 1), peer, now, ErrForged},
		{"wrong peer", secret, good, stranger, now, ErrWrongPeer},
		{"truncated", secret, good[:len(good)-1], peer, now, ErrMalformed},
		{"truncated half", secret, good[:TokenLen/2], peer, now, ErrMalformed},
		{"empty", secret, "", peer, now, ErrMalformed},
		{"extended", secret, good + "A", peer, now, ErrMalformed},
		{"not base64", secret, "!" + good[1:], peer, now, ErrMalformed},
		{"bad version", secret, flip(good, 0), peer, now, ErrVersion},
		{"weak secret", secret[:16], good, peer, now, ErrWeakSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.token, tt.peer, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("got %v want %v", err, tt.want)
			}
		})
	}
}

func TestTokenLen(t *testing.T) {
	tok := Mint(make([]byte, SecretLen), mustKey(t), time.Now())
	if len(tok) != TokenLen {
		t.Fatalf("len %d want %d", len(tok), TokenLen)
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay-secret")
	s1, err := LoadOrCreateSecret(path)
	if err != nil || len(s1) != SecretLen {
		t.Fatalf("create: %v len %d", err, len(s1))
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", st.Mode(), err)
	}
	s2, err := LoadOrCreateSecret(path)
	if err != nil || !bytes.Equal(s1, s2) {
		t.Fatalf("reload differs: %v", err)
	}
	if err := os.WriteFile(path, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSecret(path); !errors.Is(err, ErrWeakSecret) {
		t.Fatalf("short secret accepted: %v", err)
	}
	if err := os.WriteFile(path, []byte("%%%"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSecret(path); err == nil {
		t.Fatal("garbage secret accepted")
	}
}

func FuzzParse(f *testing.F) {
	secret := bytes.Repeat([]byte{1}, SecretLen)
	var peer keys.Public
	peer[0] = 9
	f.Add(Mint(secret, peer, time.Unix(1_900_000_000, 0)))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := Parse(tok)
		if err != nil {
			return
		}
		// A parsed token re-encodes to itself (canonical encoding).
		raw := []byte{p.Version}
		raw = append(raw, p.Peer[:]...)
		e := uint64(p.Expiry.Unix())
		for i := 7; i >= 0; i-- {
			raw = append(raw, byte(e>>(8*i)))
		}
		raw = append(raw, p.MAC[:]...)
		if base64.RawURLEncoding.EncodeToString(raw) != tok {
			t.Fatalf("non-canonical token accepted: %q", tok)
		}
		_ = Verify(secret, tok, p.Peer, time.Unix(0, 0))
	})
}

func BenchmarkVerify(b *testing.B) {
	secret := bytes.Repeat([]byte{7}, SecretLen)
	peer := mustKey(b)
	tok := Mint(secret, peer, time.Now().Add(time.Hour))
	now := time.Now()
	for b.Loop() {
		if err := Verify(secret, tok, peer, now); err != nil {
			b.Fatal(err)
		}
	}
}
