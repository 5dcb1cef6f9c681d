// Package seal implements the sealed envelopes of the management and signal
// protocols: NaCl box (Curve25519, XSalsa20-Poly1305) between two X25519 keys,
// with a random 24-byte nonce prepended to the ciphertext.
//
// Any package may import it. Functions are pure and safe for concurrent use.
package seal

import (
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/nacl/box"

	"petrel/internal/keys"
)

// NonceLen is the length of the nonce that starts every sealed message.
const NonceLen = 24

// Overhead is the number of bytes Seal adds to a message.
const Overhead = NonceLen + box.Overhead

// MaxMessage bounds the size of a message that Open accepts (16 MiB).
const MaxMessage = 16 << 20

// ErrOpen is returned when a sealed message is too short, too long, or does
// not authenticate.
var ErrOpen = errors.New("sealed message does not open")

// Seal encrypts msg from the holder of priv to the holder of peer.
func Seal(msg []byte, peer keys.Public, priv keys.Private) ([]byte, error) {
	var nonce [NonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	pk, sk := [32]byte(peer), [32]byte(priv)
	out := make([]byte, NonceLen, NonceLen+len(msg)+box.Overhead)
	copy(out, nonce[:])
	return box.Seal(out, msg, &nonce, &pk, &sk), nil
}

// Open decrypts a message sealed by the holder of peer for the holder of priv.
func Open(sealed []byte, peer keys.Public, priv keys.Private) ([]byte, error) {
	if len(sealed) < Overhead || len(sealed) > MaxMessage+Overhead {
		return nil, ErrOpen
	}
	var nonce [NonceLen]byte
	copy(nonce[:], sealed[:NonceLen])
	pk, sk := [32]byte(peer), [32]byte(priv)
	out, ok := box.Open(nil, sealed[NonceLen:], &nonce, &pk, &sk)
	if !ok {
		return nil, ErrOpen
	}
	return out, nil
}

// Precomputed holds the shared key of one key pair, for hot paths that seal
// many messages between the same two keys.
type Precomputed struct{ shared [32]byte }

// Precompute derives the shared key between peer and priv.
func Precompute(peer keys.Public, priv keys.Private) *Precomputed {
	p := &Precomputed{}
	pk, sk := [32]byte(peer), [32]byte(priv)
	box.Precompute(&p.shared, &pk, &sk)
	return p
}

// Seal encrypts msg with the precomputed key.
func (p *Precomputed) Seal(msg []byte) ([]byte, error) {
	var nonce [NonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	out := make([]byte, NonceLen, NonceLen+len(msg)+box.Overhead)
	copy(out, nonce[:])
	return box.SealAfterPrecomputation(out, msg, &nonce, &p.shared), nil
}

// Open decrypts a message with the precomputed key.
func (p *Precomputed) Open(sealed []byte) ([]byte, error) {
	if len(sealed) < Overhead || len(sealed) > MaxMessage+Overhead {
		return nil, ErrOpen
	}
	var nonce [NonceLen]byte
	copy(nonce[:], sealed[:NonceLen])
	out, ok := box.OpenAfterPrecomputation(nil, sealed[NonceLen:], &nonce, &p.shared)
	if !ok {
		return nil, ErrOpen
	}
	return out, nil
}
