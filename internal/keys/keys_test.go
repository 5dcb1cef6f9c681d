package keys

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// RFC 7748 §6.1: Alice's key pair.
const (
	rfcPrivate = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
	rfcPublic  = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
)

func TestPublicDerivation(t *testing.T) {
	var k Private
	b, _ := hex.DecodeString(rfcPrivate)
	copy(k[:], b)
	if got := k.Public().Hex(); got != rfcPublic {
		t.Fatalf("public %s, want %s", got, rfcPublic)
	}
}

func TestTextForms(t *testing.T) {
	k, err := NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	if k[0]&7 != 0 || k[31]&128 != 0 || k[31]&64 == 0 {
		t.Fatalf("new key not clamped: %x", k)
	}
	back, err := ParsePrivate(k.String())
	if err != nil || back != k {
		t.Fatalf("private round trip: %v", err)
	}
	p := k.Public()
	pb, err := ParsePublic(p.String())
	if err != nil || pb != p {
		t.Fatalf("public round trip: %v", err)
	}
	if len(p.Hex()) != 64 || len(k.Hex()) != 64 || p.Short() != p.String()[:8] {
		t.Fatal("bad hex or short form")
	}
	if _, err := PublicFromBytes(p[:31]); !errors.Is(err, ErrBadKey) {
		t.Fatalf("31 bytes: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	k, _ := NewPrivate()
	s := k.String()
	for name, in := range map[string]string{
		"empty":        "",
		"truncated":    s[:20],
		"one short":    s[:43],
		"too long":     s + "A",
		"not base64":   strings.Repeat("!", 44),
		"33 bytes b64": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // 44 chars, no padding: 33 bytes
	} {
		if _, err := ParsePrivate(in); !errors.Is(err, ErrBadKey) {
			t.Errorf("%s: got %v, want ErrBadKey", name, err)
		}
		if _, err := ParsePublic(in); !errors.Is(err, ErrBadKey) {
			t.Errorf("%s (public): got %v, want ErrBadKey", name, err)
		}
	}
}
