// Package keys holds WireGuard X25519 key types shared by the agent and the
// control plane: generation, base64 text form (as wg(8) prints them), hex form
// (wireguard-go UAPI) and crash-safe persistence.
//
// Any package may import it. All functions are safe for concurrent use.
package keys

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/curve25519"
)

// Len is the length in bytes of a private or public key.
const Len = 32

// ErrBadKey is returned when a key string does not decode to 32 bytes.
var ErrBadKey = errors.New("invalid key")

// Public is a Curve25519 public key.
type Public [Len]byte

// Private is a Curve25519 private key (clamped).
type Private [Len]byte

// NewPrivate returns a fresh random clamped private key.
func NewPrivate() (Private, error) {
	var k Private
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("read random: %w", err)
	}
	k.clamp()
	return k, nil
}

func (k *Private) clamp() {
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
}

// Public derives the public key.
func (k Private) Public() Public {
	var p Public
	pub, err := curve25519.X25519(k[:], curve25519.Basepoint)
	if err != nil {
		// Only fails for low-order points, impossible for the basepoint.
		panic(err)
	}
	copy(p[:], pub)
	return p
}

// IsZero reports whether the key is all zeros.
func (k Private) IsZero() bool { return subtle.ConstantTimeCompare(k[:], make([]byte, Len)) == 1 }

// String returns the base64 form.
func (k Private) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// Hex returns the hex form used by the WireGuard UAPI.
func (k Private) Hex() string { return hex.EncodeToString(k[:]) }

// String returns the base64 form.
func (p Public) String() string { return base64.StdEncoding.EncodeToString(p[:]) }

// Hex returns the hex form used by the WireGuard UAPI.
func (p Public) Hex() string { return hex.EncodeToString(p[:]) }

// IsZero reports whether the key is all zeros.
func (p Public) IsZero() bool { return p == Public{} }

// Short returns the first 8 characters of the base64 form, for logs.
func (p Public) Short() string { return p.String()[:8] }

// ParsePublic decodes a base64 public key.
func ParsePublic(s string) (Public, error) {
	var p Public
	if err := decode(s, p[:]); err != nil {
		return p, err
	}
	return p, nil
}

// ParsePrivate decodes a base64 private key.
func ParsePrivate(s string) (Private, error) {
	var k Private
	if err := decode(s, k[:]); err != nil {
		return k, err
	}
	return k, nil
}

// PublicFromBytes copies a 32-byte slice into a Public.
func PublicFromBytes(b []byte) (Public, error) {
	var p Public
	if len(b) != Len {
		return p, fmt.Errorf("%w: %d bytes, want %d", ErrBadKey, len(b), Len)
	}
	copy(p[:], b)
	return p, nil
}

func decode(s string, dst []byte) error {
	if len(s) != base64.StdEncoding.EncodedLen(Len) {
		return fmt.Errorf("%w: length %d", ErrBadKey, len(s))
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != Len {
		return fmt.Errorf("%w: not base64 of %d bytes", ErrBadKey, Len)
	}
	copy(dst, b)
	return nil
}
