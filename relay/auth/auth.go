// Package auth mints and verifies relay tokens and manages the shared relay
// secret file.
//
// A token is base64url (no padding) of
//
//	version (1) | peer public key (32) | expiry unix seconds (8, big endian) | mac (32)
//
// with mac = HMAC-SHA256(secret, peer public key || expiry). Management mints
// tokens; every relay instance of a pool verifies them with the same secret.
// Carrying the key lets Verify tell a genuine token for another peer
// (ErrWrongPeer) from a forgery (ErrForged); the MAC is checked first so a
// forger learns nothing but ErrForged.
//
// Any package may import it. All functions are safe for concurrent use.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"petrel/internal/keys"
)

// TokenVersion is the version byte of tokens minted by this package.
const TokenVersion byte = 1

const (
	rawLen = 1 + keys.Len + 8 + sha256.Size
	// TokenLen is the length of an encoded token.
	TokenLen = (rawLen*8 + 5) / 6
	// SecretLen is the length of secrets created by LoadOrCreateSecret and
	// the minimum Verify accepts.
	SecretLen = 32
)

// Verification errors; callers branch on them with errors.Is.
var (
	ErrMalformed  = errors.New("token malformed")
	ErrVersion    = errors.New("token version unsupported")
	ErrForged     = errors.New("token signature invalid")
	ErrWrongPeer  = errors.New("token issued for another peer")
	ErrExpired    = errors.New("token expired")
	ErrWeakSecret = errors.New("relay secret too short")
)

func mac(secret []byte, peer keys.Public, expiry uint64) []byte {
	var msg [keys.Len + 8]byte
	copy(msg[:], peer[:])
	binary.BigEndian.PutUint64(msg[keys.Len:], expiry)
	h := hmac.New(sha256.New, secret)
	h.Write(msg[:])
	return h.Sum(nil)
}

// Mint returns a token for peer valid until expiry.
func Mint(secret []byte, peer keys.Public, expiry time.Time) string {
	exp := uint64(expiry.Unix())
	raw := make([]byte, 0, rawLen)
	raw = append(raw, TokenVersion)
	raw = append(raw, peer[:]...)
	raw = binary.BigEndian.AppendUint64(raw, exp)
	raw = append(raw, mac(secret, peer, exp)...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// Parsed is the content of a syntactically valid token (not yet verified).
type Parsed struct {
	Version byte
	Peer    keys.Public
	Expiry  time.Time
	MAC     [sha256.Size]byte
}

// Parse decodes a token without checking its MAC.
func Parse(token string) (Parsed, error) {
	var p Parsed
	if len(token) != TokenLen {
		return p, ErrMalformed
	}
	var raw [rawLen]byte
	n, err := base64.RawURLEncoding.Strict().Decode(raw[:], []byte(token))
	if err != nil || n != rawLen {
		return p, ErrMalformed
	}
	p.Version = raw[0]
	if p.Version != TokenVersion {
		return p, ErrVersion
	}
	copy(p.Peer[:], raw[1:])
	exp := binary.BigEndian.Uint64(raw[1+keys.Len:])
	if exp > 1<<62 {
		return p, ErrMalformed
	}
	p.Expiry = time.Unix(int64(exp), 0)
	copy(p.MAC[:], raw[1+keys.Len+8:])
	return p, nil
}

// Verify checks that token was minted with secret for peer and has not
// expired at now. The MAC comparison is constant time.
func Verify(secret []byte, token string, peer keys.Public, now time.Time) error {
	if len(secret) < SecretLen {
		return ErrWeakSecret
	}
	p, err := Parse(token)
	if err != nil {
		return err
	}
	want := mac(secret, p.Peer, uint64(p.Expiry.Unix()))
	if !hmac.Equal(want, p.MAC[:]) {
		return ErrForged
	}
	if p.Peer != peer {
		return ErrWrongPeer
	}
	if !now.Before(p.Expiry) {
		return ErrExpired
	}
	return nil
}

// LoadOrCreateSecret reads the relay secret (base64 text) from path, or
// creates a random SecretLen-byte secret there (mode 0600, atomic write) if
// the file does not exist. Every instance of a pool must share the file's
// content.
func LoadOrCreateSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("parse relay secret %s: %w", path, err)
		}
		if len(s) < SecretLen {
			return nil, fmt.Errorf("read relay secret %s: %w", path, ErrWeakSecret)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read relay secret: %w", err)
	}
	s := make([]byte, SecretLen)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("generate relay secret: %w", err)
	}
	if err := keys.WriteFileAtomic(path, []byte(base64.StdEncoding.EncodeToString(s)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write relay secret: %w", err)
	}
	return s, nil
}
